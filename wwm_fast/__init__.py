"""wwm_fast: exact and fast Chinese whole-word-masking BERT pre-training data.

Stages of the data flow, one public entry each:

* ``get_segmenter``   -- word segmentation: LTP, jieba, pre-segmented (wwm_fast.segmentation)
* ``FullTokenizer``   -- WordPiece tokenization, Google-exact, native (wwm_fast.tokenization)
* ``align_words``     -- whole-word flags from a word segmentation, native (wwm_fast.alignment)
* ``build_instances`` -- segment pairs / NSP / truncation, compat or fast, native (wwm_fast.instances)
* ``sample_masks``    -- vectorised whole-word masked-LM sampling, native (wwm_fast.masking)
* ``create_instances``-- the whole pipeline, shards in parallel, TFRecords out (wwm_fast.create)

This module only re-exports the public entries (``__all__``); it must not hold code of its own,
and no module of the package imports it (the version lives in ``_version.py``).
"""

from . import _check_build  # noqa: F401  (fails with build instructions when unbuilt)
from ._version import __version__  # noqa: F401
from ._warnings import OutputWarning
from .alignment import AlignResult, WordSpans, align_words
from .create import create_instances
from .instances import Documents, Instances, build_instances
from .masking import sample_masks
from .stats import CreateStats, ShardStats
from .tokenization import Encoding, FullTokenizer

__all__ = [
    "AlignResult",
    "CreateStats",
    "Documents",
    "Encoding",
    "FullTokenizer",
    "Instances",
    "OutputWarning",
    "Segmenter",
    "ShardStats",
    "WordSpans",
    "align_words",
    "build_instances",
    "create_instances",
    "get_segmenter",
    "sample_masks",
]


def __getattr__(name):  # the segmentation package is imported on first use (start-up time)
    if name in ("Segmenter", "get_segmenter"):
        from . import segmentation

        return getattr(segmentation, name)
    raise AttributeError(f"module 'wwm_fast' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
