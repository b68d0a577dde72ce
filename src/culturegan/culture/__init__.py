"""Cultural difference study: measure, test and show how the art of cultures differs.

* :mod:`~culturegan.culture.descriptors`: interpretable descriptors, one pure function each;
* :mod:`~culturegan.culture.stats`, :mod:`~culturegan.culture.classify`,
  :mod:`~culturegan.culture.compare`: intervals, effect sizes, tests, distances, classifiers;
* :mod:`~culturegan.culture.analysis`: ``analyze_cultures`` (``culturegan analyze``);
* :mod:`~culturegan.culture.transfer`: ``analyze_transfer`` (``culturegan analyze-transfer``).

Usage::

    from culturegan.culture import analyze_cultures
    result = analyze_cultures("art/", "report/"); print(result.headline())
"""

from typing import TYPE_CHECKING

from culturegan._lazy import lazy_exports

if TYPE_CHECKING:  # the same names, for type checkers; at run time they load on first use
    from culturegan.culture.analysis import AnalysisResult, analyze_cultures
    from culturegan.culture.compare import CompareSettings, compare_cultures
    from culturegan.culture.demo import analyze_demo_cultures
    from culturegan.culture.descriptors import compute_descriptors, list_descriptors
    from culturegan.culture.transfer import TransferResult, analyze_transfer

# Lazy, so `culturegan --help` (which imports culturegan.culture.cli) imports no scipy or torch.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AnalysisResult": "culturegan.culture.analysis",
        "analyze_cultures": "culturegan.culture.analysis",
        "CompareSettings": "culturegan.culture.compare",
        "compare_cultures": "culturegan.culture.compare",
        "analyze_demo_cultures": "culturegan.culture.demo",
        "compute_descriptors": "culturegan.culture.descriptors",
        "list_descriptors": "culturegan.culture.descriptors",
        "TransferResult": "culturegan.culture.transfer",
        "analyze_transfer": "culturegan.culture.transfer",
    },
)

__all__ = [
    "AnalysisResult",
    "CompareSettings",
    "TransferResult",
    "analyze_cultures",
    "analyze_demo_cultures",
    "analyze_transfer",
    "compare_cultures",
    "compute_descriptors",
    "list_descriptors",
]
