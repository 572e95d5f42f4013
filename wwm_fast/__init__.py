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

# name -> module: the exports are imported on first use, so that a command (``wwm-fast create``
# on text) loads only what it runs; numpy included (~0.1 s of its start-up)
_EXPORTS = {
    "AlignResult": "alignment", "WordSpans": "alignment", "align_words": "alignment",
    "create_instances": "create",
    "Documents": "instances", "Instances": "instances", "build_instances": "instances",
    "sample_masks": "masking",
    "CreateStats": "stats", "ShardStats": "stats",
    "Encoding": "tokenization", "FullTokenizer": "tokenization",
    "Segmenter": "segmentation", "get_segmenter": "segmentation",
}

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


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wwm_fast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
