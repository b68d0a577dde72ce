"""What the package imports is what pyproject.toml declares, and type information ships.

A module that works only because another package happened to pull its dependency in (SciPy
through scikit-image, MarkupSafe through Jinja2) breaks when that package changes its own
dependencies; every third-party module imported anywhere under src/ must be declared, in the
core dependencies or in an extra.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "culturegan"

# Modules whose distribution is not installed here (optional extras left out of [dev]), and
# modules that come with an extra of a declared distribution.
NOT_INSTALLED_HERE = {"umap": "umap-learn", "datasets": "datasets"}
PROVIDED_BY = {"distributed": "dask"}  # dask[distributed]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {normalise(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)) for r in requirements}


def imported_modules() -> dict[str, str]:
    """Third-party top-level module -> one file that imports it (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("culturegan", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_declared():
    known = declared()
    installed = packages_distributions()
    missing = []
    for module, where in imported_modules().items():
        candidates = installed.get(module) or [NOT_INSTALLED_HERE.get(module, module)]
        names = {normalise(d) for d in candidates} | {normalise(PROVIDED_BY.get(module, ""))}
        if not names & known:
            missing.append(f"{module} (imported by {where}; distribution {sorted(candidates)})")
    assert not missing, "declare in pyproject.toml: " + "; ".join(missing)


def test_scipy_is_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(normalise(r).startswith("scipy") for r in project["dependencies"])


def test_type_information_ships():
    assert (SRC / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in package_data["package-data"]["culturegan"]
