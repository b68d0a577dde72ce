"""Models that ship inside the package, and one resolver for every way of naming a model.

A shipped model is a pretrained folder under ``culturegan/zoo/<name>/``: ``model.safetensors``,
``config.json`` and a model card ``README.md`` whose YAML front matter carries the facts a
program needs (target culture, domains, training command, judge figures). The artworks they
were trained on never ship. ``resolve_model`` turns what a user typed into a folder:

* an existing folder -> itself;
* a shipped name (``ukiyoe``) -> the package's folder;
* a Hub id (``org/name``, optionally ``org/name@revision``) -> a download through
  :mod:`culturegan.hub` (the optional ``[hub]`` extra).

Usage::

    folder = resolve_model("chinese_ink")      # then Stylizer.from_pretrained(folder)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from culturegan.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError

ZOO_DIR = Path(__file__).parent / "zoo"
CARD_NAME = "README.md"


@dataclass(frozen=True)
class ShippedModel:
    name: str  # what users type: --style NAME, Stylizer.from_pretrained(NAME)
    path: Path  # the model folder inside the installed package
    card: dict[str, Any]  # the model card's front matter

    @property
    def target(self) -> str:
        return str(self.card["target"])

    @property
    def task(self) -> str:
        """ "style transfer" (a culture model) or what else the card says (e.g. "restoration")."""
        return str(self.card.get("task", "style transfer"))

    @property
    def finish(self) -> str | None:
        """The finish the card recommends (``culturegan.finish``), or None."""
        finish = self.card.get("finish")
        return str(finish) if finish else None

    @property
    def shifts(self) -> int:
        """The passes the card recommends (``Stylizer(..., shifts=)``; 1: once)."""
        return int(self.card.get("shifts", 1))

    @property
    def domains(self) -> list[str]:
        return [str(d) for d in self.card["domains"]]

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


def read_card(path: Path) -> dict[str, Any]:
    """The YAML front matter (between the first two ``---`` lines) of a model card."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (s.strip() for s in lines[1:]):
        raise CheckpointError(f"model card '{path}' has no YAML front matter between '---' lines")
    end = next(i for i, s in enumerate(lines[1:], start=1) if s.strip() == "---")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise CheckpointError(f"model card '{path}': front matter is not YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"model card '{path}': front matter is not a mapping")
    return meta


def list_shipped(zoo_dir: Path | None = None) -> list[ShippedModel]:
    """Every shipped model, sorted by name. A folder without weights, config or a card with
    ``target`` and ``domains`` is a packaging error and raises. The package's own zoo is read
    once per process (it cannot change while installed)."""
    if zoo_dir is None:
        return list(_package_zoo())
    return _read_zoo(zoo_dir)


@functools.cache
def _package_zoo() -> tuple[ShippedModel, ...]:
    return tuple(_read_zoo(ZOO_DIR))


def _read_zoo(root: Path) -> list[ShippedModel]:
    if not root.is_dir():
        return []
    models = []
    for folder in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    ):
        for needed in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
            if not (folder / needed).is_file():
                raise CheckpointError(f"shipped model '{folder.name}' lacks {needed} ({folder})")
        card = read_card(folder / CARD_NAME)
        missing = [k for k in ("target", "domains") if k not in card]
        if missing:
            raise CheckpointError(
                f"model card of '{folder.name}' lacks {', '.join(missing)} in its front matter"
            )
        models.append(ShippedModel(folder.name, folder, card))
    return models


def shipped_model(name: str) -> ShippedModel:
    """The shipped model called ``name``; an unknown name lists the known ones."""
    models = {m.name: m for m in list_shipped()}
    if name not in models:
        known = ", ".join(models) or "none (this installation ships no models)"
        raise ValueError(f"no shipped style '{name}' (known: {known})")
    return models[name]


def card_notes(style: str | None, *, finish: str | None, shifts: int | None) -> None:
    """Print what a shipped model's card recommends and the command did not ask for."""
    card = shipped_model(style) if style else None
    if card and card.finish and finish is None:
        print(f"note: {style}'s card recommends --finish {card.finish} (not learned; "
              "it redraws the output in the medium's terms)")  # fmt: skip
    if card and card.shifts > 1 and (shifts or 1) == 1:
        print(f"note: {style}'s card recommends --shifts {card.shifts} (its lattice "
              f"cancels, at {card.shifts} times the time)")  # fmt: skip


def model_from_options(
    *, style: str | None, model: str | None, revision: str | None, target: str | None
) -> tuple[Path, str | None]:
    """The model folder and target of the commands' ``--style`` / ``--model`` / ``--revision``
    / ``--target``: a shipped model brings its own target, any other model takes ``target``."""
    if style:
        if revision:
            raise ValueError("--revision applies to Hub models (--model org/name), not to --style")
        if model:
            raise ValueError(
                "--style picks a shipped model; with --model, name the domain by --target"
            )
        shipped = shipped_model(style)
        return shipped.path, target or shipped.target
    if model:
        return resolve_model(model, revision=revision), target
    raise ValueError(
        "say which model: --style NAME (shipped, see `culturegan models`) or --model "
        "FOLDER|NAME|org/name"
    )


def resolve_model(ref: str | Path, *, revision: str | None = None) -> Path:
    """A model folder for ``ref``: a folder, a shipped name, or a Hub id (see module doc)."""
    path = Path(ref).expanduser()
    if path.exists():
        if revision is not None:
            raise ValueError(f"--revision applies to Hub models, not to the folder '{ref}'")
        return path
    text = str(ref)
    if path.is_absolute() or text.startswith((".", "~")) or "\\" in text:
        raise CheckpointError(f"model folder '{ref}' does not exist")
    models = {m.name: m for m in list_shipped()}
    if text in models:
        return models[text].path
    from culturegan.hub import HubError, download_model, is_repo_id

    if is_repo_id(text):  # "org/name" or "org/name@revision"
        try:
            return download_model(text, revision=revision)
        except HubError as exc:  # it may also be a mistyped local path
            raise HubError(f"no folder '{text}' here, and as a Hub id: {exc}") from None
    known = ", ".join(models) or "none"
    raise CheckpointError(
        f"no model '{text}': not an existing folder, not a shipped model (known: {known}) "
        "and not a Hugging Face Hub id (org/name)"
    )
