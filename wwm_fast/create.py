"""``create_instances``: text (or a segmentation cache) in, BERT pre-training TFRecords out.

The API of the ``create`` stage: it validates every flag, names the outputs and hands the work to a
runner. It must not read, build or write a shard itself, and holds no per-process state:

* ``mode="fast"`` (default): one output file per input shard, each made by ``shard.run_shard`` and
  keyed by its index, so the bytes do not depend on the runner or the number of workers; memory is
  bounded by the shard; a finished shard (output + matching stats JSON) is skipped when the job is
  run again. Runners: ``pool.run_shards`` (``runner="local"``, a process pool on this machine) or
  ``beam.run_beam_pipeline`` (``runner="beam"``).
* ``mode="compat"``: Google's create_pretraining_data.py exactly, in one process
  (``compat.create_compat``: one MT19937 over the whole corpus, documents continue across files,
  instances round-robin over the output files); ``reference="garden"``: TF Model Garden's fork
  of that script instead (``compat_garden.reference``, checked by ``compat_garden.check_options``).

The data flow of a shard is in shard.py; DESIGN.md has the whole picture.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import List, Optional, Sequence, Union

from ._limits import (MAX_DUPE_FACTOR, MAX_SEED, MAX_SEQ_LENGTH, MAX_THREADS, check_common,
                      check_int)
from ._warnings import UNK_RATE_WARNING, WWM_CONTINUATION_WARNING, warn
from .files import check_writable_folder, expand_input_files
from .pool import run_interruptibly, run_shards
from .shard import (ShardJob, check_not_empty, is_cache, kernel_for, remove_stale_temporaries,
                    resolve_num_workers, tokenizer_for)
from .stats import CreateStats, ShardStats
from ._threads import check_num_threads

__all__ = ["create_instances", "CreateStats", "ShardStats"]

MODES = ("fast", "compat")
RUNNERS = ("local", "beam")
# Modes that read the whole corpus in one process (no shards, no runner): mode -> "module:function"
# of (inputs, outputs, job, tokenizer, progress, reference) returning one ShardStats per output
# file; the reference (compat.Reference) is the script reproduced. Imported when used: fast mode
# on text runs without numpy (wwm_fast/__init__.py).
_CORPUS_MODES = {"compat": "compat:create_compat"}


def _corpus_mode(mode: str):
    import importlib

    module, function = _CORPUS_MODES[mode].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


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
    random_seed, do_lower_case : as Google's flags, within documented bounds (checked before any
        work, wwm_fast/_limits.py): max_seq_length in [5, 8192], dupe_factor in [1, 100],
        random_seed in [0, 2**63 - 1].
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
        with weights 1/n; needs ``do_whole_word_mask``. In [1, 2048] and at most
        ``max_seq_length - 3``.
    use_v2_feature_names : bool
        Model Garden's flag (reference="garden"): ``input_word_ids`` / ``input_type_ids``
        instead of ``input_ids`` / ``segment_ids``.
    garden_global_seed : int, optional
        reference="garden": seed of the n-gram size draws, which Model Garden's script takes from
        Python's unseeded global ``random`` module (default: ``random_seed``); in
        [0, 2**63 - 1].

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
    _check_limits(max_seq_length, dupe_factor, random_seed, num_workers, num_threads)
    check_common(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                 dupe_factor)
    if mode == "compat" and not next_sentence:
        raise ValueError("next_sentence=False (single-segment, no NSP) is not what Google's script "
                         "does; use mode='fast'")
    seg_spec = None
    if segmenter is not None:  # (the segmentation package loads only when it is used)
        from .segmentation.registry import spec_of
        seg_spec = spec_of(segmenter)
        do_whole_word_mask = True
    garden = None  # Model Garden's options: None unless reference="garden"
    if reference != "google" or max_ngram_size is not None or garden_global_seed is not None \
            or use_v2_feature_names:  # (compat_garden loads numpy: only when it is asked for)
        from . import compat_garden
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
    job = ShardJob(os.path.abspath(vocab_file), bool(do_lower_case), max_seq_length,
                   max_predictions_per_seq, float(masked_lm_prob), float(short_seq_prob),
                   dupe_factor, int(random_seed), bool(do_whole_word_mask), seg_spec, mode,
                   bool(next_sentence), bool(gzip), errors,
                   None if num_threads is None else check_num_threads(num_threads))
    # the vocab is checked before any work (and the tokenizer or kernel reused in-process); fast
    # mode tokenizes as Google's script does (in its native kernel)
    script = tokenizer = None
    if mode in _CORPUS_MODES:  # the script compat mode reproduces
        from .compat import GOOGLE
        if garden is None:
            script = GOOGLE
        else:
            from . import compat_garden
            script = compat_garden.reference(garden)
        tokenizer = tokenizer_for(job, script.max_input_chars_per_word)
    if runner == "local":  # a read-only folder fails now, not after the first shard's work
        for folder in sorted({os.path.dirname(os.path.abspath(o)) for o in outputs}):
            check_writable_folder(folder, "folder of output_file")
    if tokenizer is not None:
        from .instances import special_ids
        special_ids(tokenizer)
    else:
        kernel_for(job)  # a bad vocab: FullTokenizer's or special_ids' error
    if mode in _CORPUS_MODES:
        if job.num_threads is None:  # one process: every core tokenizes
            job = dataclasses.replace(job, num_threads=os.cpu_count() or 1)
        try:
            shards = run_interruptibly(_corpus_mode(mode), inputs, outputs, job, tokenizer,
                                       progress, script)
        except KeyboardInterrupt:  # the abandoned thread's temporary file
            remove_stale_temporaries(list(outputs))
            raise
        stats = CreateStats(shards, mode, time.perf_counter() - t0)
        _warn_if_unintended(stats, job, inputs)
        return stats
    outputs = _fast_outputs(inputs, outputs)
    num_workers = resolve_num_workers(num_workers, len(inputs))
    if runner == "beam":
        from .beam import run_beam_pipeline
        if job.num_threads is None:  # Beam runs one bundle per core
            job = dataclasses.replace(job, num_threads=1)
        shards = run_beam_pipeline(inputs, outputs, job, num_workers=num_workers,
                                   overwrite=overwrite, beam_options=list(beam_options or []))
    else:
        if job.num_threads is None:  # the cores the workers leave free
            job = dataclasses.replace(job, num_threads=max(1, (os.cpu_count() or 1)
                                                           // num_workers))
        shards = run_shards(inputs, outputs, job, num_workers=num_workers, overwrite=overwrite,
                            progress=progress)
    check_not_empty(shards, inputs)
    stats = CreateStats(shards, mode, time.perf_counter() - t0)
    _warn_if_unintended(stats, job, inputs)
    return stats


def _warn_if_unintended(stats: CreateStats, job: ShardJob, inputs: List[str]) -> None:
    """``OutputWarning``s for output that was written but is probably not what was meant
    (thresholds and their reasons: wwm_fast/_warnings.py)."""
    t = stats.total
    if not t["corpus_tokens"]:
        return
    if t["unk_rate"] > UNK_RATE_WARNING:
        warn(f"{100 * t['unk_rate']:.1f}% of the {t['corpus_tokens']:,} corpus tokens are [UNK] "
             f"(clean Chinese text with Google's vocab: about 1%): check that the input is UTF-8 "
             f"(with errors='ignore' / --errors ignore, the bytes of another encoding such as GBK "
             f"are dropped) and that {job.vocab_file!r} is the vocab of the model", stacklevel=4)
    continuing = t["word_continuations"] / t["corpus_tokens"]
    if job.do_whole_word_mask and job.segmenter is None and continuing < WWM_CONTINUATION_WARNING \
            and not any(_is_cache(p) for p in inputs):
        warn(f"whole word masking without word boundaries (no segmenter, no segmentation cache) "
             f"groups WordPiece ## pieces only: {100 * continuing:.2f}% of the tokens continue a "
             f"word, so masking is practically per token, which is all Google's flag does for "
             f"Chinese; give segmentation caches from `wwm-fast segment` as input_file, or a "
             f"segmenter (--segmenter)", stacklevel=4)


def _is_cache(path: str) -> bool:
    """``is_cache``; a remote path (Beam's gs://...) counts as one (no warning without a look)."""
    return "://" in path or is_cache(path)


def _check_limits(max_seq_length, dupe_factor, random_seed, num_workers, num_threads) -> None:
    """The documented bounds (wwm_fast/_limits.py), checked before any work; the lower bounds
    and types of max_seq_length and dupe_factor are ``check_common``'s."""
    for name, value, lo, hi in (("max_seq_length", max_seq_length, 5, MAX_SEQ_LENGTH),
                                ("dupe_factor", dupe_factor, 1, MAX_DUPE_FACTOR)):
        if isinstance(value, int) and value > hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    check_int("random_seed", random_seed, 0, MAX_SEED)
    if num_workers is not None:
        check_int("num_workers", num_workers, 1, MAX_THREADS)
    if num_threads is not None:
        check_int("num_threads", num_threads, 1, MAX_THREADS, also=(-1,))


# -- output names -------------------------------------------------------------------------------------


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
