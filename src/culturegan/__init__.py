"""culturegan: GAN style transfer across cultures, and measurement of how art styles differ.

Usage::

    from culturegan import Stylizer
    out = Stylizer.from_pretrained("runs/000-cyclegan/model")("photo.jpg")
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so `import culturegan` (and `culturegan --help`) does not import torch.
    if name == "Stylizer":
        from culturegan.inference import Stylizer

        return Stylizer
    raise AttributeError(name)
