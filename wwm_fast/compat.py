"""``create`` in compat mode: a reference script's records exactly, in one process.

One MT19937 over the whole corpus: every input is read first, documents continue across files
(a document ends only at a blank line), instances are built and masked in the reference script's
call order, and instance ``k`` goes to output file ``k % n`` (the scripts' round-robin). The
reference is Google's create_pretraining_data.py (``GOOGLE``) unless a ``Reference`` says what
another script does differently (wwm_fast.compat_garden: TF Model Garden's fork).

Owns that flow, the ``Reference`` hook and the stats of its outputs. It must not run shards in
parallel or resume (its random stream spans the corpus, so there are no independent shards), it
reads its inputs with the same ``read_shard`` as fast mode, so both modes see the same tokens and
whole words, and it must not know any reference but Google's (each other one lives in its module).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

from .instances import Documents, Instances, build_instances, documents_from_encoding
from .pool import progress_bar
from .shard import ShardJob, empty_corpus, read_shard, remove_stale_temporaries
from .masking import WORD_SIZE_HIST_LEN
from .stats import ShardStats, count_corpus, count_instances, write_stats
from .tfrecord import serialize_instances, write_records
from .tokenization import Encoding, FullTokenizer

__all__ = ["Reference", "GOOGLE", "create_compat"]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The script compat mode reproduces, by what it does differently from Google's; reading,
    documents across files, the round-robin over outputs and the stats are common to all."""

    label: str  # in the progress bar: create (<label>: building)
    fingerprint: str  # recorded in every output's stats JSON
    max_input_chars_per_word: int  # WordPiece: longer words are [UNK]
    # (documents of the whole corpus, tokenizer, job) -> the masked instances, predictions too
    build: Callable[[Documents, FullTokenizer, ShardJob], Instances]
    # the serialized TFRecord chunks of one output -> what is written (None: as serialized)
    records: Optional[Callable[[Iterable], Iterable]] = None


def _build_google(docs: Documents, tokenizer: FullTokenizer, job: ShardJob) -> Instances:
    return build_instances(docs, tokenizer, mode="compat", **job.build_kwargs())


GOOGLE = Reference("compat", "compat", 200, _build_google)


def create_compat(inputs: Sequence[str], outputs: Sequence[str], job: ShardJob,
                  tokenizer: FullTokenizer, progress: bool,
                  reference: Reference = GOOGLE) -> List[ShardStats]:
    """The ``reference`` script's records (default Google's) from ``inputs`` into ``outputs``
    (round-robin); one ``ShardStats`` per output, the corpus figures (and the masked-word
    histogram) on the first one only. ``tokenizer`` is ``shard.tokenizer_for(job,
    reference.max_input_chars_per_word)``."""
    if tokenizer.max_input_chars_per_word != reference.max_input_chars_per_word:
        raise ValueError(f"compat mode ({reference.label}) tokenizes with "
                         f"max_input_chars_per_word={reference.max_input_chars_per_word}, got a "
                         f"tokenizer with {tokenizer.max_input_chars_per_word}")
    t0 = time.perf_counter()
    remove_stale_temporaries(list(outputs))
    bar = progress_bar(sum(_input_size(p) for p in inputs), "create", progress)
    encs, starts, n_fallback, n_bytes = [], [], 0, 0
    try:
        for path in inputs:
            enc, ws, nf, nb = read_shard(path, job, tokenizer)
            encs.append(enc)
            starts.append(ws)
            n_fallback += nf
            n_bytes += nb
            bar.update(_input_size(path))
        # Google reads all files into one list of documents: a document ends only at a blank line.
        enc = _concat_encodings(encs)
        docs = documents_from_encoding(enc, np.concatenate(starts) if starts else None)
        if docs.n_documents == 0:
            raise empty_corpus(list(inputs))
        bar.set_description(f"create ({reference.label}: building)")
        inst = reference.build(docs, tokenizer, job)
    finally:
        bar.close()
    mask_id = tokenizer.vocab["[MASK]"]
    shards = []
    n = len(outputs)
    for j, out in enumerate(outputs):
        order = np.arange(j, inst.n, n, dtype=np.int64)  # instance k -> file k % n
        sub = _subset(inst, order)
        chunks = serialize_instances(docs, sub, tokenizer, np.arange(len(order)),
                                     max_seq_length=job.max_seq_length,
                                     max_predictions_per_seq=job.max_predictions_per_seq)
        if reference.records is not None:
            chunks = reference.records(chunks)
        stats = ShardStats(list(inputs), out, fingerprint=reference.fingerprint)
        if j == 0:  # corpus-level figures are reported once
            stats.input_bytes, stats.lines = n_bytes, len(enc.row_splits) - 1
            count_corpus(stats, docs, tokenizer.unk_id, n_fallback)
        count_instances(stats, sub, mask_id)
        # the builder counts masked words over the whole corpus: report them once
        stats.masked_group_hist = ([int(x) for x in inst.group_hist] if j == 0
                                   else [0] * WORD_SIZE_HIST_LEN)
        stats.output_bytes = write_records(out, chunks, gzip=job.gzip)
        shards.append(stats)
    elapsed = time.perf_counter() - t0
    for s in shards:
        s.seconds = elapsed
        write_stats(s)
    return shards


def _input_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


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
