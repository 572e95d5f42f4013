"""``segment_files``: segment corpus shards once into segmentation caches (``wwm-fast segment``).

The runner of the segment stage: it must not segment (the segmenters do) nor start processes
itself (``wwm_fast.pool.run_tasks``, the package's one process pool, does, with the start method
explained there).

Work is split into chunks of lines (about ``chunk_chars`` characters each), so the workers stay
busy whatever the shard sizes; the main process reads and decodes each shard, hands chunks to the
worker processes, collects their word spans in order, and writes each shard's cache as soon as all
its chunks are back. Each worker builds its own segmenter once, from the spec
(``registry.cached_segmenter``).

Resumable: a shard whose cache already exists with the same segmenter spec, decode policy and
input (same size and mtime, or same content hash) is skipped. Caches are written under a
temporary name and renamed, so an interrupted run never leaves a half-written cache under its
final name; rerunning completes the missing ones.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

from ..alignment import WordSpans
from ..files import check_writable_folder, decode_lines, expand_input_files, read_bytes
from ..pool import progress_bar, run_tasks
from .._threads import check_num_threads, resolve_num_threads
from ._spans import concat_spans
from .cache import CACHE_SUFFIX, is_cache_file, read_cache_header, write_cache
from .registry import cached_segmenter, get_segmenter

__all__ = ["segment_files", "SegmentReport", "cache_path_for"]


class SegmentReport(NamedTuple):
    outputs: List[str]  # cache path per input file, in input order
    n_segmented: int  # shards segmented in this run
    n_skipped: int  # shards whose cache was already complete
    n_lines: int
    n_chars: int
    n_words: int
    n_unmatched: int  # lines whose segmenter output could not be matched (one word per char)
    seconds: float
    segmenter: str
    n_convert_fallback: int = 0  # --convert: lines segmented unconverted (not mappable back)
    n_convert_realigned: int = 0  # --convert: lines whose conversion needed aligning


def cache_path_for(input_path: str, output_dir: str) -> str:
    """``output_dir/<input basename without .gz>.wwmseg``."""
    name = os.path.basename(input_path)
    if name.endswith(".gz"):
        name = name[:-3]
    return os.path.join(output_dir, name + CACHE_SUFFIX)


def _is_complete(cache: str, source: str, spec: str, errors: str) -> bool:
    if not os.path.exists(cache):
        return False
    try:
        h = read_cache_header(cache)
    except ValueError:
        return False
    if (h.get("segmenter") != spec or h.get("errors") != errors
            or h.get("source") != os.path.abspath(source)):
        return False
    st = os.stat(source)
    if h.get("source_size") == st.st_size and h.get("source_mtime_ns") == st.st_mtime_ns:
        return True
    import hashlib

    try:
        return hashlib.sha256(read_bytes(source)).hexdigest() == h.get("data_sha256")
    except ValueError:
        return False


# -- worker side ------------------------------------------------------------------------------


def _worker_segment(spec: str, num_threads: int, lines: List[str],
                    segmented: Optional[List[str]], source: str, segmented_source: Optional[str],
                    line_offset: int):
    seg = cached_segmenter(spec, num_threads)
    return _run_segmenter(seg, lines, segmented, source, segmented_source, line_offset)


def _run_segmenter(seg, lines, segmented, source, segmented_source, line_offset):
    """(word spans, then what this chunk added to the segmenter's counters: unmatched lines,
    and with ``--convert`` lines segmented unconverted and lines realigned)."""
    before = (seg.n_unmatched, getattr(seg, "n_convert_fallback", 0),
              getattr(seg, "n_convert_realigned", 0))
    if segmented is not None:
        words = seg.segment_batch(lines, segmented=segmented, source=source,
                                  segmented_source=segmented_source, line_offset=line_offset)
    else:
        words = seg.segment_batch(lines, source=source, line_offset=line_offset)
    return (words, seg.n_unmatched - before[0],
            getattr(seg, "n_convert_fallback", 0) - before[1],
            getattr(seg, "n_convert_realigned", 0) - before[2])


def _chunks(lines: Sequence[str], chunk_chars: int):
    """(start, end) line ranges of about chunk_chars characters each."""
    out = []
    start = 0
    size = 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if size >= chunk_chars:
            out.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(lines) or not out:
        out.append((start, len(lines)))
    return out


class _Shard:
    def __init__(self, index, path, seg_path, cache, disk_size):
        self.index = index
        self.path = path
        self.seg_path = seg_path
        self.cache = cache
        self.disk_size = disk_size
        self.data = b""
        self.parts: Dict[int, WordSpans] = {}
        self.n_chunks = 0
        self.n_chars = 0
        self.n_lines = 0
        self.n_unmatched = 0
        self.n_convert_fallback = 0
        self.n_convert_realigned = 0


def segment_files(input_files, segmenter: str, output_dir: str, *,
                  segmented_files=None, num_workers: int = 1, num_threads: int = 1,
                  errors: str = "strict", overwrite: bool = False, compress: bool = False,
                  progress: bool = True, chunk_chars: int = 200_000,
                  convert: Optional[str] = None) -> SegmentReport:
    """Segment text shards into segmentation caches in ``output_dir`` (one per input file).

    Parameters
    ----------
    input_files : str or list
        Google's ``--input_file`` syntax (comma-separated globs) or a list of paths.
    segmenter : str
        A segmenter spec (``get_segmenter``).
    segmented_files : str or list, optional
        With ``pre:DELIM``: the segmented twin of each input file (same order, line-aligned).
        Without it, ``pre`` reads the words from the input files themselves.
    num_workers : int
        Processes (-1 = all cores); 1 segments in this process.
    num_threads : int
        Threads inside each segmenter (LTP legacy).
    errors : {"strict", "ignore"}
        Invalid UTF-8: "strict" stops naming file and line, "ignore" drops the bytes (Google).
    overwrite : bool
        Segment again even where a matching cache exists.
    convert : str, optional
        An OpenCC config (``"t2s"``, ``"tw2s"``, ...): segment a converted copy of each line and
        map the words back to the original text (``wwm_fast.segmentation.convert``). Recorded in
        the caches' segmenter spec, so the workers build the same converted segmenter from it.
    """
    t0 = time.perf_counter()
    num_workers = resolve_num_threads(num_workers, "num_workers")
    num_threads = check_num_threads(num_threads)
    if errors not in ("strict", "ignore"):
        raise ValueError(f"errors must be one of ['strict', 'ignore'], got {errors!r}")
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars must be >= 1, got {chunk_chars}")
    files = expand_input_files(input_files)
    seg_files = expand_input_files(segmented_files) if segmented_files else None
    if seg_files is not None and len(seg_files) != len(files):
        raise ValueError(f"segmented_file matches {len(seg_files)} files but input_file matches "
                         f"{len(files)}: give one segmented file per input file, in the same "
                         f"order")
    caches = [cache_path_for(p, output_dir) for p in files]
    seen: Dict[str, str] = {}
    for p, c in zip(files, caches):
        if is_cache_file(p):
            raise ValueError(f"input file {p!r} is already a segmentation cache")
        if c in seen:
            raise ValueError(f"input files {seen[c]!r} and {p!r} would both be cached as {c!r}: "
                             f"segment them into different output folders")
        seen[c] = p
    # Build the segmenter here first: a missing package, model or bad spec fails before any work.
    seg = get_segmenter(segmenter, num_threads=num_threads)
    if convert is not None:
        from .convert import ConvertedSegmenter

        seg = ConvertedSegmenter(seg, convert)
    spec = seg.spec
    converting = hasattr(seg, "converter")  # --convert, or a "SPEC|convert=..." segmenter
    if seg_files is not None and getattr(seg, "kind", "") != "pre":
        raise ValueError("segmented_file is only used with a 'pre:DELIM' segmenter")
    check_writable_folder(output_dir, "output_dir")

    shards = []
    n_skipped = 0
    for i, (p, c) in enumerate(zip(files, caches)):
        if not overwrite and _is_complete(c, p, spec, errors):
            n_skipped += 1
            continue
        shards.append(_Shard(i, p, seg_files[i] if seg_files else None, c, os.path.getsize(p)))

    totals = {"lines": 0, "chars": 0, "words": 0, "unmatched": 0, "convert_fallback": 0,
              "convert_realigned": 0}

    def tasks():
        for shard in shards:
            shard.data = read_bytes(shard.path)
            lines = decode_lines(shard.data, errors, shard.path)
            seg_lines = None
            if shard.seg_path is not None:
                seg_lines = decode_lines(read_bytes(shard.seg_path), errors, shard.seg_path)
                if len(seg_lines) != len(lines):
                    raise ValueError(
                        f"segmented file {shard.seg_path!r} has {len(seg_lines)} lines but "
                        f"input file {shard.path!r} has {len(lines)}: they must be line-aligned")
            shard.n_chars = sum(map(len, lines))
            shard.n_lines = len(lines)
            ranges = _chunks(lines, chunk_chars)
            shard.n_chunks = len(ranges)
            for k, (a, b) in enumerate(ranges):
                yield (shard, k), (lines[a:b], None if seg_lines is None else seg_lines[a:b],
                               shard.path, shard.seg_path, a)
            del lines, seg_lines

    def finish(shard: _Shard, k: int, result):
        words, n_bad, n_conv_fallback, n_conv_realigned = result
        shard.parts[k] = words
        shard.n_unmatched += n_bad
        shard.n_convert_fallback += n_conv_fallback
        shard.n_convert_realigned += n_conv_realigned
        done_lines = len(words.row_splits) - 1
        bar.update(shard.disk_size * done_lines / max(1, shard.n_lines))
        if len(shard.parts) == shard.n_chunks:
            allwords = concat_spans([shard.parts[j] for j in range(shard.n_chunks)])
            extra = {"n_unmatched": shard.n_unmatched,
                     "segmented_source": (os.path.abspath(shard.seg_path)
                                          if shard.seg_path else None)}
            if converting:
                extra.update(n_convert_fallback=shard.n_convert_fallback,
                             n_convert_realigned=shard.n_convert_realigned)
            write_cache(shard.cache, shard.data, allwords, segmenter=spec,
                        source=os.path.abspath(shard.path), errors=errors, compress=compress,
                        extra=extra)
            totals["lines"] += len(allwords.row_splits) - 1
            totals["chars"] += shard.n_chars
            totals["words"] += len(allwords.starts)
            totals["unmatched"] += shard.n_unmatched
            totals["convert_fallback"] += shard.n_convert_fallback
            totals["convert_realigned"] += shard.n_convert_realigned
            shard.data = b""
            shard.parts.clear()

    if num_workers == 1 or not shards:  # in this process, with the segmenter built above
        fn = functools.partial(_run_segmenter, seg)
        num_workers = 1
    else:  # each worker builds its own from the spec
        seg.close()
        fn = functools.partial(_worker_segment, spec, num_threads)
    del seg
    # chunks collected in submission order, so shards complete (and are written) in order; at
    # most two chunks per worker wait, so memory holds a few chunks, not the corpus
    with run_tasks(fn, tasks(), num_workers, max_pending=2 * num_workers, ordered=True) as done:
        # the bar starts its thread after the pool forked its workers; shown on a terminal only
        bar = progress_bar(sum(s.disk_size for s in shards), "segment", progress,
                           terminal_only=True)
        try:
            for (shard, k), result in done:
                finish(shard, k, result)
        finally:
            bar.close()
    return SegmentReport(caches, len(shards), n_skipped, totals["lines"], totals["chars"],
                         totals["words"], totals["unmatched"], time.perf_counter() - t0, spec,
                         totals["convert_fallback"], totals["convert_realigned"])
