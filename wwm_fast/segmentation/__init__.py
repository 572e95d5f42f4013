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
* ``train_ltp_segmenter`` (``wwm-fast train-segmenter``) and ``evaluate_segmenter``.
* ``chinese_ref_ids`` (``wwm-fast refs``): HuggingFace ``chinese_ref`` for ``run_mlm_wwm.py``.

See README.md in this folder for the user guide.
"""

from .base import Segmenter, get_segmenter
from .cache import (SegmentedShard, is_cache_file, read_cache, read_cache_header,
                    write_cache)
from .pipeline import SegmentReport, segment_files
from .refs import chinese_ref_ids, make_refs
from .train import SegmentationScores, evaluate_segmenter, train_ltp_segmenter

__all__ = [
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
