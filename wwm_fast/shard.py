"""One shard of ``create`` (fast mode): the unit of work of every runner (local pool and Beam).

    read shard -> [segment] -> tokenize -> align words -> documents -> build instances
               -> sample whole-word masks -> serialize -> write atomically + stats JSON

Owns the job description (``ShardJob``: the validated flags), reading a shard (text or a
segmentation cache) into tokens and whole-word flags, the per-process tokenizer, the fingerprint
and resume check (one implementation for local files and, through ``Storage``, for Beam's remote
ones), and ``run_shard``. It must not choose workers, processes or output names (the runners and
``create_instances`` do), and its bytes must depend only on the job, the shard index and the input:
never on the runner, the worker or the number of threads.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ._version import __version__
from ._threads import resolve_num_threads
from .files import TMP_SUFFIX, decode_lines, read_bytes, write_records
from .stats import STATS_SUFFIX, ShardStats, write_stats

if TYPE_CHECKING:  # numpy and the staged modules load only for caches and segmenters
    import numpy as np

    from .alignment import WordSpans
    from .tokenization import Encoding, FullTokenizer

__all__ = ["ShardJob", "run_shard", "read_shard", "is_cache", "tokenizer_for", "prepare_worker",
           "Storage", "LOCAL", "fingerprint", "load_complete", "remove_stale_temporaries",
           "resolve_num_workers", "check_not_empty", "empty_corpus", "kernel_for"]


@dataclasses.dataclass
class ShardJob:
    """What every shard of a run is made with: ``create_instances``'s validated flags.

    Picklable and small (it travels to worker processes and Beam workers). Every field but
    ``num_threads`` enters the shards' fingerprints.
    """

    vocab_file: str  # absolute path
    do_lower_case: bool
    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    dupe_factor: int
    random_seed: int
    do_whole_word_mask: bool
    segmenter: Optional[str]  # a segmenter spec, or None
    mode: str
    next_sentence: bool
    gzip: bool
    errors: str
    num_threads: Optional[int]  # None: chosen by the runner (cores / workers locally, 1 on Beam)

    def build_kwargs(self) -> dict:
        """The ``build_instances`` arguments (besides the documents, tokenizer, mode, shard)."""
        return dict(max_seq_length=self.max_seq_length,
                    max_predictions_per_seq=self.max_predictions_per_seq,
                    masked_lm_prob=self.masked_lm_prob, short_seq_prob=self.short_seq_prob,
                    dupe_factor=self.dupe_factor, random_seed=self.random_seed,
                    do_whole_word_mask=self.do_whole_word_mask, next_sentence=self.next_sentence)


# -- per-process state -------------------------------------------------------------------------------

_TOKENIZERS: Dict[tuple, FullTokenizer] = {}


def tokenizer_for(job: ShardJob, max_input_chars_per_word: int = 200) -> "FullTokenizer":
    """One tokenizer per process, vocab and WordPiece word limit (its tables take ~50 ms to build).

    ``max_input_chars_per_word``: longer words are ``[UNK]``; 200 is Google's (compat mode's
    references may differ: Model Garden's is 400).
    """
    from .tokenization import FullTokenizer

    try:
        st = os.stat(job.vocab_file)
        stamp = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None  # FullTokenizer reports the missing file
    key = (job.vocab_file, stamp, job.do_lower_case, max_input_chars_per_word)
    tok = _TOKENIZERS.get(key)
    if tok is None:
        tok = _TOKENIZERS[key] = FullTokenizer(
            job.vocab_file, do_lower_case=job.do_lower_case,
            max_input_chars_per_word=max_input_chars_per_word)
    return tok


def prepare_worker(job: ShardJob) -> None:
    """Build this process's shard kernel (and segmenter) now (a worker's set-up), not at its
    first shard; the tokenizer is built when a shard needs it (a segmentation cache)."""
    kernel_for(job)
    if job.segmenter is not None:
        from .segmentation.registry import cached_segmenter
        cached_segmenter(job.segmenter)


# every segmentation cache starts with segmentation.cache.MAGIC, which begins with these bytes
# (tests/test_fast_shard.py)
_CACHE_MAGIC_PREFIX = b"WWMSEG"


# -- reading a shard -----------------------------------------------------------------------------------


def is_cache(path: str) -> bool:
    """``path`` is a segmentation cache (``wwm-fast segment``'s output), not text."""
    try:  # most inputs are text: no need to load the segmentation package (and numpy) for them
        with open(path, "rb") as f:
            if not f.read(len(_CACHE_MAGIC_PREFIX)) == _CACHE_MAGIC_PREFIX:
                return False
    except OSError:
        return False
    try:
        from .segmentation.cache import is_cache_file
    except ImportError:  # segmentation stage not installed in this build
        return False
    return is_cache_file(path)


def read_shard(path: str, job: ShardJob,
               tokenizer: FullTokenizer) -> Tuple[Encoding, np.ndarray, int, int]:
    """Tokenize one input shard; returns (Encoding, word_start, n_fallback, input_bytes).

    ``word_start`` has one uint8 per token: 1 where a whole word starts (every token without
    whole word masking; WordPiece groups, or segmenter words from a cache or ``job.segmenter``,
    with it). ``n_fallback`` counts the lines whose words could not be aligned to the tokens.
    """
    import numpy as np

    from .alignment import align_words

    words: Optional[WordSpans] = None
    if is_cache(path):
        from .segmentation.cache import read_cache
        shard = read_cache(path)
        data, errors, words = shard.data, shard.errors, shard.words
        if job.segmenter is not None and shard.segmenter != job.segmenter:
            raise ValueError(f"{path}: segmentation cache was made with {shard.segmenter!r}, "
                             f"not the requested segmenter {job.segmenter!r}; rerun "
                             f"'wwm-fast segment' or drop --segmenter")
    else:
        data, errors = read_bytes(path), job.errors
    aligning = job.do_whole_word_mask and (words is not None or job.segmenter is not None)
    enc = tokenizer.encode_file_bytes(data, source=path, errors=errors,
                                      num_threads=job.num_threads, with_offsets=aligning)
    if words is None and job.segmenter is not None:
        from .segmentation.registry import cached_segmenter
        seg = cached_segmenter(job.segmenter)
        words = seg.segment_batch(decode_lines(data, errors, path), source=path)
    n_fallback = 0
    if not job.do_whole_word_mask:
        word_start = np.ones(len(enc.ids), dtype=np.uint8)
    elif words is None:
        word_start = (1 - tokenizer.is_subword(enc.ids)).astype(np.uint8)
    else:
        aligned = align_words(enc, words, tokenizer.is_subword(enc.ids),
                              num_threads=job.num_threads)
        word_start, n_fallback = aligned.word_start, aligned.n_fallback
        no_offsets = np.zeros(0, dtype=np.int32)  # 8 bytes a token, not needed after alignment
        enc = enc._replace(starts=no_offsets, ends=no_offsets)
    return enc, word_start, n_fallback, len(data)


# -- fingerprint and resume ----------------------------------------------------------------------------


class Storage:
    """Where a runner's inputs and outputs live, as the resume check sees them.

    This class is the local file system; the Beam runner passes a subclass over Beam's
    ``FileSystems`` for remote paths (``gs://``, ``s3://``). The fingerprint and resume logic
    (``fingerprint``, ``load_complete``) is the same for both.
    """

    #: exceptions that mean "not there / not readable" (the shard is then not complete)
    missing = (OSError, ValueError)

    def identity(self, job: ShardJob, path: str, output: str) -> dict:
        """What names this input, output and vocab in the fingerprint (a change redoes the
        shard): here the absolute paths, the input's and the vocab's size and mtime."""
        st = os.stat(path)
        vocab = os.stat(job.vocab_file)
        return dict(input=os.path.abspath(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                    vocab_size=vocab.st_size, vocab_mtime_ns=vocab.st_mtime_ns,
                    output=os.path.abspath(output))

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    def size(self, path: str) -> int:
        return os.path.getsize(path)


LOCAL = Storage()


def fingerprint(job: ShardJob, index: int, identity: dict) -> str:
    """20 hex digits naming a shard's output: the job's flags (not ``num_threads``, which does not
    change the bytes), the shard index, the input/output/vocab ``identity`` (``Storage.identity``)
    and the wwm_fast version. Recorded in the stats JSON; a rerun skips a shard whose recorded
    fingerprint matches."""
    import hashlib

    payload = dict(dataclasses.asdict(job), num_threads=None, index=index, version=__version__)
    payload.update(identity)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def load_complete(output: str, fingerprint: str,
                  storage: Storage = LOCAL) -> Optional[ShardStats]:
    """The stats of ``output`` when an earlier run completed it with this ``fingerprint`` (its
    stats JSON records the fingerprint and the output has the recorded size), else None."""
    try:
        d = json.loads(storage.read_text(output + STATS_SUFFIX))
        size = storage.size(output)
    except storage.missing:
        return None
    if not isinstance(d, dict) or d.get("fingerprint") != fingerprint \
            or size != d.get("output_bytes"):
        return None
    stats = ShardStats.from_json(d)
    stats.skipped = True
    return stats


# -- one shard -----------------------------------------------------------------------------------------


def run_shard(index: int, path: str, output: str, job: ShardJob, overwrite: bool) -> ShardStats:
    """The whole per-shard pipeline on local files.

    Reads ``path`` (shard number ``index`` keys the RNG), writes ``output`` and its stats JSON
    atomically; returns the stats (``skipped`` when an earlier run already completed it).

    The work is one native pass (``_shard``: tokenize, documents, instances, and per record in
    write order its masks and its framed bytes), fed with the text itself or, for a segmentation
    cache or a segmenter, with the documents ``read_shard`` makes. Its bytes and figures equal
    the staged API's (build_instances -> sample_masks -> shuffled_order -> serialize_instances;
    tests/test_fast_shard.py).
    """
    t0 = time.perf_counter()
    fp = fingerprint(job, index, LOCAL.identity(job, path, output))
    if not overwrite:
        done = load_complete(output, fp)
        if done is not None:
            return done
    kernel = kernel_for(job)
    threads = resolve_num_threads(-1 if job.num_threads is None else job.num_threads)
    n_fallback = 0
    if job.segmenter is None and not is_cache(path):
        data = read_bytes(path)
        shard, err = kernel.text_shard(data, job.errors, index, threads)
        if err is not None:  # invalid UTF-8: the tokenizer's error names the file, line, bytes
            tokenizer_for(job).encode_file_bytes(data, source=path, errors=job.errors,
                                                 num_threads=1, with_offsets=False)
            raise AssertionError(f"{path}: the shard kernel and the tokenizer disagree on the "
                                 f"UTF-8 of line {err[0] + 1}")  # pragma: no cover
        n_bytes = len(data)
        del data
    else:
        from .instances import documents_from_encoding

        enc, word_start, n_fallback, n_bytes = read_shard(path, job, tokenizer_for(job))
        docs = documents_from_encoding(enc, word_start)
        lines = len(enc.row_splits) - 1
        del enc, word_start
        shard = kernel.documents_shard(docs.ids, docs.word_start, docs.sent_splits,
                                       docs.doc_splits, index, lines)
        del docs  # the shard keeps the arrays alive
    stats = ShardStats([path], output, input_bytes=n_bytes, fingerprint=fp)
    stats.output_bytes = write_records(output, _chunks(shard, threads), gzip=job.gzip)
    for key, value in shard.figures().items():
        setattr(stats, key, value)
    stats.align_fallback_lines = int(n_fallback)
    stats.seconds = time.perf_counter() - t0
    write_stats(stats)
    return stats


def _chunks(shard, threads: int):
    """The shard's chunks of framed records (each valid while the next two are made, which is
    what write_records' one-chunk queue needs)."""
    while True:
        chunk = shard.next_chunk(threads)
        if chunk is None:
            return
        yield chunk


_KERNELS: Dict[tuple, object] = {}


def kernel_for(job: ShardJob):
    """One native shard kernel (``_shard.Kernel``: vocab, tokenizer, configuration) per process
    and job; its vocab is parsed natively (Google's load_vocab, tests/test_fast_shard.py).

    A vocab the kernel refuses is reported by ``FullTokenizer`` / ``special_ids`` (their messages
    name the file, line and entry)."""
    from . import _shard

    try:
        st = os.stat(job.vocab_file)
        stamp = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None
    settings = dataclasses.astuple(dataclasses.replace(job, num_threads=None))
    key = (job.vocab_file, stamp, settings)
    kernel = _KERNELS.get(key)
    if kernel is not None:
        return kernel
    try:
        vocab = None
        if stamp is not None:
            with open(job.vocab_file, "rb") as f:
                vocab = _shard.Vocab(f.read())
        if vocab is None or vocab.error_line >= 0 or len(vocab) == 0:
            raise ValueError("the vocab could not be parsed")
        kernel = _shard.Kernel(vocab, "[UNK]", job.do_lower_case, 200, job.max_seq_length,
                               job.max_predictions_per_seq, job.masked_lm_prob,
                               job.short_seq_prob, job.dupe_factor, job.do_whole_word_mask,
                               job.next_sentence, job.random_seed)
    except (OSError, ValueError):
        from .instances import special_ids
        special_ids(tokenizer_for(job))  # raises the error that names the file and entry
        raise
    _KERNELS.clear()  # one job at a time in a process
    _KERNELS[key] = kernel
    return kernel


# -- what every runner does around the shards ----------------------------------------------------------


def resolve_num_workers(num_workers: Optional[int], n_shards: int) -> int:
    """Worker processes for ``n_shards`` shards: ``num_workers`` (default: the cores), at most
    one per shard. Raises ValueError for anything but an int >= 1 or None."""
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    return max(1, min(num_workers, n_shards))


def remove_stale_temporaries(outputs: List[str]) -> None:
    """Temporary files a killed run left beside our local outputs (never under a final name)."""
    for out in outputs:
        folder = os.path.dirname(os.path.abspath(out))
        for name in (os.path.basename(out), os.path.basename(out) + STATS_SUFFIX):
            for tmp in glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(name)
                                              + ".*" + TMP_SUFFIX)):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def check_not_empty(results: List[ShardStats], inputs: List[str]) -> None:
    """An empty corpus is an error; its (empty) outputs are removed so nothing misleading stays."""
    if any(s.instances for s in results) or any(s.skipped for s in results):
        return
    for s in results:
        for f in (s.output_file, s.output_file + STATS_SUFFIX):
            if os.path.exists(f):
                os.unlink(f)
    raise empty_corpus(inputs)


def empty_corpus(inputs: List[str]) -> ValueError:
    """The error for a corpus without a token (every mode raises the same)."""
    return ValueError(f"empty corpus: no line of {len(inputs)} input file(s) has any token "
                      f"({', '.join(inputs[:3])}{', ...' if len(inputs) > 3 else ''})")
