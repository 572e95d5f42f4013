"""``create`` in compat mode: Google's create_pretraining_data.py exactly, in one process.

One MT19937 over the whole corpus: every input is read first, documents continue across files
(a document ends only at a blank line), instances are built and masked by the compat builder in
Google's call order, and instance ``k`` goes to output file ``k % n`` (Google's round-robin).

Owns that flow and the stats of its outputs. It must not run shards in parallel or resume (its
random stream spans the corpus, so there are no independent shards), and it reads its inputs with
the same ``read_shard`` as fast mode, so both modes see the same tokens and whole words.
"""

from __future__ import annotations

import os
import time
from typing import List, Sequence

import numpy as np

from .instances import build_instances, documents_from_encoding
from .pool import progress_bar
from .shard import ShardJob, empty_corpus, read_shard, remove_stale_temporaries
from .masking import WORD_SIZE_HIST_LEN
from .stats import ShardStats, count_corpus, count_instances, write_stats
from .tfrecord import serialize_instances, write_records
from .tokenization import Encoding, FullTokenizer

__all__ = ["create_compat"]


def create_compat(inputs: Sequence[str], outputs: Sequence[str], job: ShardJob,
                  tokenizer: FullTokenizer, progress: bool) -> List[ShardStats]:
    """Google's records from ``inputs`` into ``outputs`` (round-robin); one ``ShardStats`` per
    output, the corpus figures (and the masked-word histogram) on the first one only."""
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
        bar.set_description("create (compat: building)")
        inst = build_instances(docs, tokenizer, mode="compat", **job.build_kwargs())
    finally:
        bar.close()
    mask_id = tokenizer.vocab["[MASK]"]
    shards = []
    n = len(outputs)
    for j, out in enumerate(outputs):
        order = np.arange(j, inst.n, n, dtype=np.int64)  # Google: instance k -> file k % n
        sub = _subset(inst, order)
        chunks = serialize_instances(docs, sub, tokenizer, np.arange(len(order)),
                                     max_seq_length=job.max_seq_length,
                                     max_predictions_per_seq=job.max_predictions_per_seq)
        stats = ShardStats(list(inputs), out, fingerprint="compat")
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
