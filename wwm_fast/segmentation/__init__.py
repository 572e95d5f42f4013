"""Chinese word segmentation for whole word masking: segmenters, the segmentation cache, refs.

>>> from wwm_fast.segmentation import get_segmenter
>>> seg = get_segmenter("ltp:/models/ltp-legacy")          # doctest: +SKIP
>>> words = seg.segment_batch(["迈向充满希望的新世纪"])      # doctest: +SKIP
>>> words.starts, words.ends, words.row_splits             # doctest: +SKIP
(array([0, 2, 4, 6, 7, 8], dtype=int32), array([2, 4, 6, 7, 8, 10], dtype=int32), array([0, 6]))

* ``get_segmenter(spec)`` -> ``Segmenter``: LTP legacy, LTP neural, jieba, pre-segmented text;
  ``segment_batch(lines)`` returns ``WordSpans`` (code point spans per line).
* ``segment_files`` (``wwm-fast segment``): shards -> segmentation caches, in parallel, resumable;
  ``read_cache`` / ``is_cache_file`` / ``write_cache`` for the cache files.
* ``ConvertedSegmenter`` (``wwm-fast segment --convert t2s``): any segmenter run on an
  OpenCC-converted copy of the text, words mapped back to the original characters.
* ``train_ltp_segmenter`` (``wwm-fast train-segmenter``) and ``evaluate_segmenter``.
* ``chinese_ref_ids`` (``wwm-fast refs``): HuggingFace ``chinese_ref`` for ``run_mlm_wwm.py``.

The package facade: it only re-exports, lazily; modules of the package import the submodules
(``registry``, ``cache``...), never this facade. See README.md in this folder for the user guide.
"""

import importlib

# name -> submodule; imported on first use, so that `import wwm_fast.segmentation` (which create
# does for every input, to recognise caches) costs nothing until a segmenter is needed
_EXPORTS = {
    "Segmenter": "base", "get_segmenter": "registry",
    "ConvertedSegmenter": "convert",
    "SegmentedShard": "cache", "is_cache_file": "cache", "read_cache": "cache",
    "read_cache_header": "cache", "write_cache": "cache",
    "SegmentReport": "pipeline", "segment_files": "pipeline",
    "chinese_ref_ids": "refs", "make_refs": "refs",
    "SegmentationScores": "train", "evaluate_segmenter": "train", "train_ltp_segmenter": "train",
}

__all__ = [
    "ConvertedSegmenter",
    "SegmentReport",
    "SegmentationScores",
    "SegmentedShard",
    "Segmenter",
    "chinese_ref_ids",
    "evaluate_segmenter",
    "get_segmenter",
    "is_cache_file",
    "make_refs",
    "read_cache",
    "read_cache_header",
    "segment_files",
    "train_ltp_segmenter",
    "write_cache",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
