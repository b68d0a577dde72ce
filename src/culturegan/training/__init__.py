"""Training: the loop and one module per recipe (the only place with optimisers)."""

from culturegan.training.loop import RECIPES, TrainResult, export_run, list_recipes, train

__all__ = ["RECIPES", "TrainResult", "export_run", "list_recipes", "train"]
