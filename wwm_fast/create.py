"""``create_instances``: text (or a segmentation cache) in, BERT pre-training TFRecords out.

The whole data flow, one shard at a time (see DESIGN.md):

    read shard -> [segment] -> tokenize -> align words -> documents -> build instances
               -> sample whole-word masks -> serialize -> write atomically + stats JSON

``mode="fast"`` (default): one output file per input shard, shards processed by a pool of
``num_workers`` processes, each shard keyed by its index so the bytes do not depend on the number of
workers; memory is bounded by the shard. A finished shard (output + matching stats JSON) is skipped
when the job is run again, so a killed run is finished by rerunning it.

``mode="compat"``: Google's create_pretraining_data.py exactly (one MT19937 over the whole corpus,
documents continue across files, instances round-robin over the output files);
``reference="garden"``: TF Model Garden's fork of that script instead (wwm_fast.compat_garden).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import List, Optional, Sequence, Union

import numpy as np

from . import __version__, compat_garden
from .alignment import WordSpans, align_words
from .files import TMP_SUFFIX, atomic_output, decode_lines, expand_input_files, read_bytes
from .instances import (Documents, _check_common, build_instances, documents_from_encoding,
                        shuffled_order, special_ids)
from .masking import sample_masks
from .tfrecord import serialize_instances, write_records
from .tokenization import Encoding, FullTokenizer, _resolve_threads

__all__ = ["create_instances", "CreateStats", "ShardStats"]

MODES = ("fast", "compat")
RUNNERS = ("local", "beam")
STATS_SUFFIX = ".stats.json"
_GROUP_HIST = 17


@dataclasses.dataclass
class ShardStats:
    """What one output shard holds (also written as ``<output>.stats.json``)."""

    input_files: List[str]
    output_file: str
    input_bytes: int = 0
    lines: int = 0
    documents: int = 0
    corpus_tokens: int = 0
    unk_tokens: int = 0
    instances: int = 0
    instance_tokens: int = 0  # incl. [CLS]/[SEP], excl. padding
    masked_tokens: int = 0
    mask_replaced: int = 0  # shown as [MASK]
    random_replaced: int = 0  # shown as a random token
    random_next: int = 0
    single_segment: int = 0
    word_continuations: int = 0  # corpus tokens that continue a whole word
    align_fallback_lines: int = 0
    masked_group_hist: List[int] = dataclasses.field(default_factory=lambda: [0] * _GROUP_HIST)
    output_bytes: int = 0
    seconds: float = 0.0
    skipped: bool = False  # True: already complete from an earlier run
    fingerprint: str = ""

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["unk_rate"] = self.unk_tokens / self.corpus_tokens if self.corpus_tokens else 0.0
        d["random_next_fraction"] = self.random_next / self.instances if self.instances else 0.0
        d["masked_fraction"] = (self.masked_tokens / self.instance_tokens
                                if self.instance_tokens else 0.0)
        return d


_TOTAL_FIELDS = ("input_bytes", "lines", "documents", "corpus_tokens", "unk_tokens", "instances",
                 "instance_tokens", "masked_tokens", "mask_replaced", "random_replaced",
                 "random_next", "single_segment", "word_continuations", "align_fallback_lines",
                 "output_bytes")


@dataclasses.dataclass
class CreateStats:
    """Totals of a ``create_instances`` run (``.total``), plus the per-shard stats."""

    shards: List[ShardStats]
    mode: str
    seconds: float

    @property
    def total(self) -> dict:
        t = {k: sum(getattr(s, k) for s in self.shards) for k in _TOTAL_FIELDS}
        t["masked_group_hist"] = [int(sum(v)) for v in zip(*(s.masked_group_hist
                                                                for s in self.shards))]
        t["unk_rate"] = t["unk_tokens"] / max(1, t["corpus_tokens"])
        t["random_next_fraction"] = t["random_next"] / max(1, t["instances"])
        t["masked_fraction"] = t["masked_tokens"] / max(1, t["instance_tokens"])
        return t

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.shards)

    @property
    def output_files(self) -> List[str]:
        return [s.output_file for s in self.shards]

    def to_json(self) -> dict:
        return {"mode": self.mode, "seconds": self.seconds, "total": self.total,
                "shards": [s.to_json() for s in self.shards]}

    def summary(self) -> str:
        t = self.total
        skipped = sum(s.skipped for s in self.shards)
        hist = t["masked_group_hist"]
        groups = ", ".join(f"{k}:{hist[k]}" for k in range(1, len(hist)) if hist[k])
        lines = [
            f"wrote {t['instances']:,} instances to {len(self.shards)} file(s) "
            f"({t['output_bytes'] / 1e6:.1f} MB) in {self.seconds:.2f} s"
            + (f"; {skipped} shard(s) were already complete" if skipped else ""),
            f"  input: {t['input_bytes'] / 1e6:.2f} MB, {t['lines']:,} lines, "
            f"{t['documents']:,} documents, {t['corpus_tokens']:,} tokens "
            f"([UNK] {100 * t['unk_rate']:.2f}%)",
            f"  masked: {t['masked_tokens']:,} of {t['instance_tokens']:,} instance tokens "
            f"({100 * t['masked_fraction']:.2f}%), [MASK] {_pct(t['mask_replaced'], t['masked_tokens'])}, "
            f"random {_pct(t['random_replaced'], t['masked_tokens'])}",
            f"  random next: {100 * t['random_next_fraction']:.1f}% of instances; "
            f"whole-word continuations: {t['word_continuations']:,} tokens; "
            f"alignment fallback: {t['align_fallback_lines']:,} lines",
            f"  masked whole words by size: {groups}",
        ]
        return "\n".join(lines)


def _pct(a, b):
    return f"{100 * a / b:.1f}%" if b else "n/a"


@dataclasses.dataclass
class _Config:
    vocab_file: str
    do_lower_case: bool
    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    dupe_factor: int
    random_seed: int
    do_whole_word_mask: bool
    segmenter: Optional[str]
    mode: str
    next_sentence: bool
    gzip: bool
    errors: str
    num_threads: Optional[int]  # None: chosen by the runner (cores / workers locally, 1 on Beam)

    def build_kwargs(self) -> dict:
        return dict(max_seq_length=self.max_seq_length,
                    max_predictions_per_seq=self.max_predictions_per_seq,
                    masked_lm_prob=self.masked_lm_prob, short_seq_prob=self.short_seq_prob,
                    dupe_factor=self.dupe_factor, random_seed=self.random_seed,
                    do_whole_word_mask=self.do_whole_word_mask, next_sentence=self.next_sentence)


def create_instances(
    input_files: Union[str, Sequence[str]],
    vocab_file: str,
    output_files: Union[str, Sequence[str]],
    *,
    max_seq_length: int = 128,
    max_predictions_per_seq: int = 20,
    masked_lm_prob: float = 0.15,
    short_seq_prob: float = 0.1,
    dupe_factor: int = 10,
    random_seed: int = 12345,
    do_lower_case: bool = True,
    do_whole_word_mask: bool = False,
    segmenter=None,
    mode: str = "fast",
    next_sentence: bool = True,
    num_workers: Optional[int] = None,
    num_threads: Optional[int] = None,
    gzip: bool = False,
    errors: str = "strict",
    overwrite: bool = False,
    progress: bool = True,
    runner: str = "local",
    beam_options: Optional[Sequence[str]] = None,
    reference: str = "google",
    max_ngram_size: Optional[int] = None,
    use_v2_feature_names: bool = False,
    garden_global_seed: Optional[int] = None,
) -> CreateStats:
    """BERT pre-training TFRecords with (whole word) masking from text files.

    Parameters
    ----------
    input_files : str or list of str
        Google's ``--input_file``: comma-separated globs. UTF-8 text, one sentence per line, a blank
        line between documents (``.gz`` is decompressed), or segmentation caches written by
        ``wwm-fast segment`` (their words are used for whole word masking).
    vocab_file : str
        The BERT vocab (e.g. ``chinese_L-12_H-768_A-12/vocab.txt``).
    output_files : str or list of str
        compat: Google's round-robin list. fast: one file per input shard; a single name with
        several inputs becomes ``<stem>-00000-of-0000N<ext>``.
    max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob, dupe_factor,
    random_seed, do_lower_case : as Google's flags.
    do_whole_word_mask : bool
        Mask whole words: WordPiece ``##`` groups, and segmenter words when a segmenter or a
        segmentation cache gives them (Chinese WWM).
    segmenter : str or Segmenter, optional
        Segment raw text on the fly, e.g. ``"ltp:/models/ltp-legacy"`` or ``"jieba"``
        (implies ``do_whole_word_mask``). Prefer ``wwm-fast segment`` once + caches.
    mode : {"fast", "compat"}
    next_sentence : bool
        False builds single-segment instances from consecutive sentences (RoBERTa-wwm-ext style,
        no NSP; ``next_sentence_labels`` written as 0). Fast mode only.
    num_workers : int, optional
        Processes, one shard each (default: cores, at most the number of shards).
    num_threads : int, optional
        Threads inside a worker for tokenization, masking and serialization; -1 = all cores.
        Default: cores // num_workers in fast mode, all cores in compat mode (one process), 1 on
        Beam (which runs a shard per core). The output bytes do not depend on it.
    gzip : bool
        GZIP-compress the TFRecords (``compression_type="GZIP"``).
    errors : {"strict", "ignore"}
        Invalid UTF-8: stop naming file and line, or drop the bytes as Google's
        ``convert_to_unicode`` does.
    overwrite : bool
        Redo shards whose output is already complete (default: skip them, which resumes a run).
    progress : bool
        A progress bar on stderr.
    runner : {"local", "beam"}
        local: a process pool on this machine. beam: an Apache Beam pipeline (fast mode), one
        element per shard, same bytes as local; ``beam_options`` are Beam pipeline options
        (e.g. ``["--runner=DataflowRunner", "--project=...", "--setup_file=./setup.py"]``); without
        a runner option it runs on Beam's local runner with ``num_workers`` processes.
    reference : {"google", "garden"}
        The script compat mode reproduces: Google's create_pretraining_data.py, or TF Model
        Garden's (tensorflow/models official/nlp/data; wwm_fast.compat_garden says what differs).
    max_ngram_size : int, optional
        Model Garden's flag (reference="garden"): mask n-grams of up to N whole words, n drawn
        with weights 1/n; needs ``do_whole_word_mask``.
    use_v2_feature_names : bool
        Model Garden's flag (reference="garden"): ``input_word_ids`` / ``input_type_ids``
        instead of ``input_ids`` / ``segment_ids``.
    garden_global_seed : int, optional
        reference="garden": seed of the n-gram size draws, which Model Garden's script takes from
        Python's unseeded global ``random`` module (default: ``random_seed``).

    Returns
    -------
    CreateStats
        Totals (``.instances``, ``.masked_tokens``, ...) and per-shard ``ShardStats``; every
        output file gets ``<output>.stats.json``.
    """
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {list(RUNNERS)}, got {runner!r}")
    if runner == "beam" and mode != "fast":
        raise ValueError("runner='beam' runs fast mode (one element per shard); compat mode "
                         "needs the whole corpus in one process")
    if errors not in ("strict", "ignore"):
        raise ValueError(f"errors must be one of ['strict', 'ignore'], got {errors!r}")
    _check_common(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    if mode == "compat" and not next_sentence:
        raise ValueError("next_sentence=False (single-segment, no NSP) is not what Google's script "
                         "does; use mode='fast'")
    seg_spec = _segmenter_spec(segmenter)
    if seg_spec is not None:
        do_whole_word_mask = True
    garden = compat_garden.check_options(
        mode=mode, reference=reference, max_ngram_size=max_ngram_size,
        use_v2_feature_names=use_v2_feature_names, garden_global_seed=garden_global_seed,
        do_whole_word_mask=do_whole_word_mask, max_seq_length=max_seq_length,
        random_seed=random_seed)
    if runner == "beam":  # gs://, s3://... globs go through Beam's FileSystems
        from .beam import expand_input_files as _expand_beam_inputs
        inputs = _expand_beam_inputs(input_files)
    else:
        inputs = expand_input_files(input_files)
    outputs = _split_outputs(output_files)
    cfg = _Config(os.path.abspath(vocab_file), bool(do_lower_case), max_seq_length,
                  max_predictions_per_seq, float(masked_lm_prob), float(short_seq_prob),
                  dupe_factor, int(random_seed), bool(do_whole_word_mask), seg_spec, mode,
                  bool(next_sentence), bool(gzip), errors,
                  None if num_threads is None else _resolve_threads(num_threads))
    tokenizer = _tokenizer_for(cfg)  # validates the vocab before any work (reused in-process)
    special_ids(tokenizer)
    if mode == "compat":
        if cfg.num_threads is None:  # one process: every core tokenizes
            cfg = dataclasses.replace(cfg, num_threads=os.cpu_count() or 1)
        if garden is not None:
            shards = compat_garden.create_garden(inputs, outputs, cfg, garden, progress)
        else:
            shards = _create_compat(inputs, outputs, cfg, tokenizer, progress)
    elif runner == "beam":
        from .beam import run_beam_pipeline
        if cfg.num_threads is None:  # Beam runs one bundle per core
            cfg = dataclasses.replace(cfg, num_threads=1)
        outputs = _fast_outputs(inputs, outputs)
        shards = run_beam_pipeline(inputs, outputs, cfg, num_workers=num_workers,
                                   overwrite=overwrite, beam_options=list(beam_options or []))
        _check_not_empty(shards, inputs)
    else:
        shards = _create_fast(inputs, _fast_outputs(inputs, outputs), cfg, num_workers, overwrite,
                              progress)
    return CreateStats(shards, mode, time.perf_counter() - t0)


# -- inputs and outputs ------------------------------------------------------------------------------


def _split_outputs(output_files) -> List[str]:
    if isinstance(output_files, (list, tuple)):
        outs = [os.fspath(o) for o in output_files]
    else:
        outs = [o.strip() for o in os.fspath(output_files).split(",")]
    outs = [o for o in outs if o]
    if not outs:
        raise ValueError(f"output_file is empty: {output_files!r}")
    if len(set(map(os.path.abspath, outs))) != len(outs):
        raise ValueError(f"output_file names a file twice: {outs}")
    for o in outs:
        if os.path.isdir(o):
            raise ValueError(f"output_file {o!r} is a directory; name a file")
    return outs


def _fast_outputs(inputs: List[str], outputs: List[str]) -> List[str]:
    if len(outputs) == len(inputs):
        return outputs
    if len(outputs) == 1:
        stem, ext = _split_ext(outputs[0])
        n = len(inputs)
        return [f"{stem}-{i:05d}-of-{n:05d}{ext}" for i in range(n)]
    raise ValueError(f"fast mode writes one output file per input shard: give one output name "
                     f"(shards are numbered) or {len(inputs)} names, got {len(outputs)}")


def _split_ext(path: str):
    base = os.path.basename(path)
    for ext in (".tfrecord.gz", ".tfrecords.gz", ".tfrecord", ".tfrecords", ".gz"):
        if base.endswith(ext) and len(base) > len(ext):
            return path[:-len(ext)], ext
    return path, ""


def _segmenter_spec(segmenter) -> Optional[str]:
    if segmenter is None:
        return None
    if isinstance(segmenter, str):
        return segmenter
    spec = getattr(segmenter, "spec", None)
    if not isinstance(spec, str):
        raise TypeError(f"segmenter must be a spec string (e.g. 'jieba', 'ltp:/path') or a "
                        f"wwm_fast Segmenter, got {type(segmenter).__name__}")
    return spec


def _is_cache(path: str) -> bool:
    try:
        from .segmentation import is_cache_file
    except ImportError:  # segmentation stage not installed in this build
        return False
    return is_cache_file(path)


def _tokenizer_for(cfg: _Config) -> FullTokenizer:
    """One tokenizer per process and vocab (its tables take ~50 ms to build)."""
    try:
        st = os.stat(cfg.vocab_file)
        stamp = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None  # FullTokenizer reports the missing file
    key = (cfg.vocab_file, stamp, cfg.do_lower_case)
    tok = _TOKENIZERS.get(key)
    if tok is None:
        tok = _TOKENIZERS[key] = FullTokenizer(cfg.vocab_file, do_lower_case=cfg.do_lower_case)
    return tok


_TOKENIZERS: dict = {}
_SEGMENTERS: dict = {}


def _read_shard(path: str, cfg: _Config, tokenizer: FullTokenizer):
    """Tokenize one input shard; returns (Encoding, word_start, n_fallback, input_bytes)."""
    words: Optional[WordSpans] = None
    if _is_cache(path):
        from .segmentation import read_cache
        shard = read_cache(path)
        data, errors, words = shard.data, shard.errors, shard.words
        if cfg.segmenter is not None and shard.segmenter != cfg.segmenter:
            raise ValueError(f"{path}: segmentation cache was made with {shard.segmenter!r}, "
                             f"not the requested segmenter {cfg.segmenter!r}; rerun "
                             f"'wwm-fast segment' or drop --segmenter")
    else:
        data, errors = read_bytes(path), cfg.errors
    aligning = cfg.do_whole_word_mask and (words is not None or cfg.segmenter is not None)
    enc = tokenizer._encode_buffer(data, None, errors, True, cfg.num_threads, source=path,
                                   with_offsets=aligning)
    if words is None and cfg.segmenter is not None:
        seg = _SEGMENTERS.get(cfg.segmenter)
        if seg is None:
            from .segmentation import get_segmenter
            seg = _SEGMENTERS[cfg.segmenter] = get_segmenter(cfg.segmenter)
        words = seg.segment_batch(decode_lines(data, errors, path), source=path)
    n_fallback = 0
    if not cfg.do_whole_word_mask:
        word_start = np.ones(len(enc.ids), dtype=np.uint8)
    elif words is None:
        word_start = (1 - tokenizer.is_subword(enc.ids)).astype(np.uint8)
    else:
        aligned = align_words(enc, words, tokenizer.is_subword(enc.ids),
                              num_threads=cfg.num_threads)
        word_start, n_fallback = aligned.word_start, aligned.n_fallback
        no_offsets = np.zeros(0, dtype=np.int32)  # 8 bytes a token, not needed after alignment
        enc = enc._replace(starts=no_offsets, ends=no_offsets)
    return enc, word_start, n_fallback, len(data)


# -- fast mode ----------------------------------------------------------------------------------------


def _fingerprint(cfg: _Config, index: int, path: str, output: str) -> str:
    import hashlib

    st = os.stat(path)
    vocab = os.stat(cfg.vocab_file)
    payload = dict(dataclasses.asdict(cfg), num_threads=None, index=index,
                   input=os.path.abspath(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                   vocab_size=vocab.st_size, vocab_mtime_ns=vocab.st_mtime_ns,
                   output=os.path.abspath(output), version=__version__)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _load_complete(output: str, fingerprint: str) -> Optional[ShardStats]:
    """Stats of an output shard finished by an earlier run with the same configuration."""
    try:
        with open(output + STATS_SUFFIX, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("fingerprint") != fingerprint or os.path.getsize(output) != d.get("output_bytes"):
            return None
    except (OSError, ValueError):
        return None
    fields = {k: d[k] for k in ShardStats.__dataclass_fields__ if k in d}
    stats = ShardStats(**fields)
    stats.skipped = True
    return stats


def _run_shard(index: int, path: str, output: str, cfg: _Config, overwrite: bool) -> ShardStats:
    """The whole per-shard pipeline: the unit of work of the local pool and of the Beam runner.

    Reads ``path`` (shard number ``index`` keys the RNG), writes ``output`` and its stats JSON
    atomically; returns the stats (``skipped`` when an earlier run already completed it).
    """
    t0 = time.perf_counter()
    fingerprint = _fingerprint(cfg, index, path, output)
    if not overwrite:
        done = _load_complete(output, fingerprint)
        if done is not None:
            return done
    tokenizer = _tokenizer_for(cfg)
    enc, word_start, n_fallback, n_bytes = _read_shard(path, cfg, tokenizer)
    docs = documents_from_encoding(enc, word_start)
    stats = ShardStats([path], output, input_bytes=n_bytes, lines=len(enc.row_splits) - 1,
                       fingerprint=fingerprint)
    del enc, word_start  # what is still needed lives in docs
    _corpus_stats(stats, docs, tokenizer, n_fallback)
    if docs.n_documents == 0:
        chunks = []
    else:
        inst = build_instances(docs, tokenizer, mode="fast", shard=index, **cfg.build_kwargs())
        inst = sample_masks(docs, inst, tokenizer, max_seq_length=cfg.max_seq_length,
                            max_predictions_per_seq=cfg.max_predictions_per_seq,
                            masked_lm_prob=cfg.masked_lm_prob,
                            do_whole_word_mask=cfg.do_whole_word_mask, num_threads=cfg.num_threads)
        order = shuffled_order(inst.n, cfg.random_seed, index)
        chunks = serialize_instances(docs, inst, tokenizer, order,
                                     max_seq_length=cfg.max_seq_length,
                                     max_predictions_per_seq=cfg.max_predictions_per_seq,
                                     num_threads=cfg.num_threads)
        _instance_stats(stats, inst, tokenizer)
    stats.output_bytes = write_records(output, chunks, gzip=cfg.gzip)
    stats.seconds = time.perf_counter() - t0
    _write_stats(stats)
    return stats


def _corpus_stats(stats: ShardStats, docs: Documents, tokenizer: FullTokenizer, n_fallback: int):
    stats.documents = docs.n_documents
    stats.corpus_tokens = len(docs.ids)
    stats.unk_tokens = int(np.count_nonzero(docs.ids == tokenizer.unk_id))
    stats.word_continuations = int(len(docs.word_start) - np.count_nonzero(docs.word_start))
    stats.align_fallback_lines = int(n_fallback)


def _instance_stats(stats: ShardStats, inst, tokenizer: FullTokenizer):
    pairs = inst.b_len > 0
    stats.instances = inst.n
    stats.instance_tokens = int(inst.a_len.sum() + inst.b_len.sum() + 2 * inst.n
                                + np.count_nonzero(pairs))
    stats.masked_tokens = len(inst.pred_positions)
    stats.mask_replaced = int(np.count_nonzero(inst.pred_input_ids == tokenizer.vocab["[MASK]"]))
    stats.random_replaced = int(np.count_nonzero(
        (inst.pred_input_ids != inst.pred_labels)
        & (inst.pred_input_ids != tokenizer.vocab["[MASK]"])))
    stats.random_next = int(inst.next_label.sum())
    stats.single_segment = int(inst.n - np.count_nonzero(pairs))
    stats.masked_group_hist = [int(x) for x in inst.group_hist]


def _write_stats(stats: ShardStats):
    with atomic_output(stats.output_file + STATS_SUFFIX, "w") as f:
        json.dump(stats.to_json(), f, indent=1, ensure_ascii=False)
        f.write("\n")


def _remove_stale_temporaries(outputs: List[str]):
    """Temporary files a killed run left beside our outputs (never under a final name)."""
    import glob

    for out in outputs:
        folder = os.path.dirname(os.path.abspath(out))
        for name in (os.path.basename(out), os.path.basename(out) + STATS_SUFFIX):
            for tmp in glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(name)
                                              + ".*" + TMP_SUFFIX)):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _create_fast(inputs, outputs, cfg: _Config, num_workers, overwrite, progress):
    if num_workers is None:
        num_workers = min(len(inputs), os.cpu_count() or 1)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
    num_workers = min(num_workers, len(inputs))
    if cfg.num_threads is None:  # the cores the workers leave free
        cfg = dataclasses.replace(cfg, num_threads=max(1, (os.cpu_count() or 1) // num_workers))
    _remove_stale_temporaries(outputs)
    sizes = [_input_size(p) for p in inputs]
    results: List[Optional[ShardStats]] = [None] * len(inputs)
    t0 = time.perf_counter()
    pool = futures = None
    if num_workers > 1:
        import concurrent.futures
        import multiprocessing

        # fork where available: workers start at once and inherit the loaded tokenizer. They are
        # forked by the first submit, before this function starts any thread (the progress bar).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context(method))
        futures = {pool.submit(_run_shard, i, p, o, cfg, overwrite): i
                   for i, (p, o) in enumerate(zip(inputs, outputs))}
    bar = _progress_bar(sum(sizes), progress)

    def done(i, stats):
        results[i] = stats
        bar.update(sizes[i])
        n_inst = sum(s.instances for s in results if s is not None and not s.skipped)
        bar.set_postfix(instances=f"{n_inst:,}",
                        per_s=f"{n_inst / max(1e-9, time.perf_counter() - t0):,.0f}")

    try:
        if pool is None:
            for i, (path, out) in enumerate(zip(inputs, outputs)):
                done(i, _run_shard(i, path, out, cfg, overwrite))
        else:
            for fut in concurrent.futures.as_completed(futures):
                done(futures[fut], fut.result())
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    _check_not_empty(results, inputs)
    return results


def _check_not_empty(results: List[ShardStats], inputs: List[str]):
    """An empty corpus is an error; its (empty) outputs are removed so nothing misleading stays."""
    if any(s.instances for s in results) or any(s.skipped for s in results):
        return
    for s in results:
        for f in (s.output_file, s.output_file + STATS_SUFFIX):
            if os.path.exists(f):
                os.unlink(f)
    raise ValueError(f"empty corpus: no line of {len(inputs)} input file(s) has any token "
                     f"({', '.join(inputs[:3])}{', ...' if len(inputs) > 3 else ''})")


def _input_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _NoBar:
    """What a disabled progress bar does (tqdm is not even imported)."""

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="create",
                file=sys.stderr, dynamic_ncols=True)


# -- compat mode --------------------------------------------------------------------------------------


def _create_compat(inputs, outputs, cfg: _Config, tokenizer: FullTokenizer, progress):
    t0 = time.perf_counter()
    _remove_stale_temporaries(outputs)
    bar = _progress_bar(sum(_input_size(p) for p in inputs), progress)
    encs, starts, n_fallback, n_bytes = [], [], 0, 0
    try:
        for path in inputs:
            enc, ws, nf, nb = _read_shard(path, cfg, tokenizer)
            encs.append(enc)
            starts.append(ws)
            n_fallback += nf
            n_bytes += nb
            bar.update(_input_size(path))
        # Google reads all files into one list of documents: a document ends only at a blank line.
        enc = _concat_encodings(encs)
        docs = documents_from_encoding(enc, np.concatenate(starts) if starts else None)
        if docs.n_documents == 0:
            raise ValueError(f"empty corpus: no line of {len(inputs)} input file(s) has any token "
                             f"({', '.join(inputs[:3])}{', ...' if len(inputs) > 3 else ''})")
        bar.set_description("create (compat: building)")
        inst = build_instances(docs, tokenizer, mode="compat", **cfg.build_kwargs())
    finally:
        bar.close()
    shards = []
    n = len(outputs)
    for j, out in enumerate(outputs):
        order = np.arange(j, inst.n, n, dtype=np.int64)  # Google: instance k -> file k % n
        sub = _subset(inst, order)
        chunks = serialize_instances(docs, sub, tokenizer, np.arange(len(order)),
                                     max_seq_length=cfg.max_seq_length,
                                     max_predictions_per_seq=cfg.max_predictions_per_seq)
        stats = ShardStats(list(inputs), out, fingerprint="compat")
        if j == 0:  # corpus-level figures are reported once
            stats.input_bytes, stats.lines = n_bytes, len(enc.row_splits) - 1
            _corpus_stats(stats, docs, tokenizer, n_fallback)
        _instance_stats(stats, sub, tokenizer)
        # the builder counts masked words over the whole corpus: report them once
        stats.masked_group_hist = ([int(x) for x in inst.group_hist] if j == 0
                                   else [0] * _GROUP_HIST)
        stats.output_bytes = write_records(out, chunks, gzip=cfg.gzip)
        shards.append(stats)
    elapsed = time.perf_counter() - t0
    for s in shards:
        s.seconds = elapsed
        _write_stats(s)
    return shards


def _concat_encodings(encs: List[Encoding]) -> Encoding:
    ids = np.concatenate([e.ids for e in encs])
    splits = [np.zeros(1, np.int64)]
    offset = 0
    for e in encs:
        splits.append(e.row_splits[1:] + offset)
        offset += len(e.ids)
    empty = np.zeros(0, np.int32)
    return Encoding(ids, np.concatenate(splits), empty, empty,
                    np.concatenate([e.blank for e in encs]))


def _subset(inst, order: np.ndarray):
    """The instances ``order`` (with their predictions), as a new Instances."""
    splits = inst.pred_splits
    counts = splits[order + 1] - splits[order]
    new_splits = np.zeros(len(order) + 1, np.int64)
    np.cumsum(counts, out=new_splits[1:])
    idx = (np.repeat(splits[order] - new_splits[:-1], counts) + np.arange(new_splits[-1]))
    return inst._replace(
        a_start=inst.a_start[order], a_len=inst.a_len[order], b_start=inst.b_start[order],
        b_len=inst.b_len[order], next_label=inst.next_label[order],
        key=inst.key[order] if len(inst.key) else inst.key, pred_splits=new_splits,
        pred_positions=inst.pred_positions[idx], pred_input_ids=inst.pred_input_ids[idx],
        pred_labels=inst.pred_labels[idx])
