"""Documents and pre-training instances (stage 4 of the data flow), native builders.

Documents are flat arrays (``Documents``): token ids, one whole-word-start flag per token, sentence
and document row splits. Instances are token *ranges* of those arrays (``Instances``):
``[CLS] ids[a_start:a_start+a_len] [SEP] ids[b_start:b_start+b_len] [SEP]``, plus the masked-LM
predictions once the sampler (wwm_fast.masking) or the compat builder has run.

Two builders (``build_instances``):

* ``mode="compat"``: Google's ``create_training_instances`` bit for bit -- CPython's MT19937 in the
  exact call order (shuffle documents; per pass and document: short-sequence draw, chunking, random
  next with up to 10 retries, truncation, masking; final shuffle of all instances). Needs the whole
  corpus at once, as Google's script does.
* ``mode="fast"``: the same distributions per shard with a counter-based RNG keyed by
  (seed, shard, document, pass); a random next comes from another document of the same shard.
  Output does not depend on how many workers or machines run the shards.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _check_build  # noqa: F401
from . import _instances
from ._limits import check_common as _check_common
from .tokenization import Encoding, FullTokenizer

__all__ = ["Documents", "Instances", "documents_from_encoding", "build_instances",
           "shuffled_order", "special_ids"]


class Documents(NamedTuple):
    """Sentences of token ids grouped into documents, as flat arrays.

    Sentence ``s`` = ``ids[sent_splits[s]:sent_splits[s+1]]``; document ``d`` = sentences
    ``doc_splits[d]:doc_splits[d+1]``. No sentence or document is empty.
    """

    ids: np.ndarray  # int32 [n_tokens]
    word_start: np.ndarray  # uint8 [n_tokens], 1 = starts a whole word
    sent_splits: np.ndarray  # int64 [n_sentences + 1]
    doc_splits: np.ndarray  # int64 [n_documents + 1]

    @property
    def n_documents(self) -> int:
        return len(self.doc_splits) - 1

    @property
    def n_sentences(self) -> int:
        return len(self.sent_splits) - 1

    def _as_dict(self) -> dict:
        return {"ids": self.ids, "word_start": self.word_start, "sent_splits": self.sent_splits,
                "doc_splits": self.doc_splits}


class Instances(NamedTuple):
    """Instances as ranges of a ``Documents``' ids, with predictions (empty until sampled)."""

    a_start: np.ndarray  # int64 [n]
    a_len: np.ndarray  # int32 [n]
    b_start: np.ndarray  # int64 [n]
    b_len: np.ndarray  # int32 [n] (0: single segment, no NSP)
    next_label: np.ndarray  # uint8 [n]: 1 = B is a random next
    key: np.ndarray  # uint64 [n] (fast mode: the sampler's RNG key of each instance)
    pred_splits: np.ndarray  # int64 [n + 1]
    pred_positions: np.ndarray  # int32 [n_pred], ascending within an instance
    pred_input_ids: np.ndarray  # int32 [n_pred]: [MASK], the original id, or a random id
    pred_labels: np.ndarray  # int32 [n_pred]: the original id
    group_hist: np.ndarray  # int64 [WORD_SIZE_HIST_LEN]: masked whole words by size

    @property
    def n(self) -> int:
        """The number of instances (``len()`` of a NamedTuple is its number of fields)."""
        return len(self.a_start)

    def _as_dict(self) -> dict:
        return self._asdict()


def documents_from_encoding(enc: Encoding, word_start: Optional[np.ndarray] = None,
                            doc_ids: Optional[np.ndarray] = None) -> Documents:
    """Google's document structure from tokenized lines.

    A blank line (empty after ``str.strip()``) ends a document; a line with no tokens is skipped
    without ending one; empty documents disappear. ``doc_ids`` (one per line) overrides the
    grouping, e.g. to continue documents across files as Google does.
    """
    n_tok = np.diff(enc.row_splits)
    if doc_ids is None:
        doc_ids = np.cumsum(enc.blank, dtype=np.int64)
    keep = n_tok > 0
    lengths = n_tok[keep]
    sent_splits = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sent_splits[1:])
    sent_doc = doc_ids[keep]
    breaks = np.flatnonzero(sent_doc[1:] != sent_doc[:-1]) + 1
    doc_splits = np.concatenate(([0], breaks, [len(lengths)])).astype(np.int64) if len(lengths) \
        else np.zeros(1, dtype=np.int64)
    if word_start is None:
        word_start = np.ones(len(enc.ids), dtype=np.uint8)
    return Documents(np.ascontiguousarray(enc.ids, dtype=np.int32),
                     np.ascontiguousarray(word_start, dtype=np.uint8), sent_splits, doc_splits)


def special_ids(tokenizer: FullTokenizer) -> dict:
    """[CLS]/[SEP]/[MASK] ids, and the random-replacement table (Google's ``vocab_words`` order).

    Computed once per tokenizer (cached on it).
    """
    cached = getattr(tokenizer, "_special_ids", None)
    if cached is not None:
        return cached
    vocab = tokenizer.vocab
    missing = [t for t in ("[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        raise ValueError(f"vocab_file {tokenizer.vocab_file!r} lacks {missing}; a BERT vocab has "
                         f"[CLS], [SEP] and [MASK]")
    ids = {"cls_id": vocab["[CLS]"], "sep_id": vocab["[SEP]"], "mask_id": vocab["[MASK]"],
           "rand_ids": np.fromiter(vocab.values(), dtype=np.int32, count=len(vocab))}
    tokenizer._special_ids = ids
    return ids


def _seed_key(seed: int) -> list:
    """CPython's random.seed(int): the 32-bit little-endian words of abs(seed), at least one."""
    n = abs(int(seed))
    words = []
    while True:
        words.append(n & 0xFFFFFFFF)
        n >>= 32
        if not n:
            break
    return words


def build_instances(docs: Documents, tokenizer: FullTokenizer, *, mode: str = "fast",
                    max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                    masked_lm_prob: float = 0.15, short_seq_prob: float = 0.1,
                    dupe_factor: int = 10, random_seed: int = 12345,
                    do_whole_word_mask: bool = False, next_sentence: bool = True,
                    shard: int = 0) -> Instances:
    """Instances of ``docs``.

    compat: Google's ``create_training_instances`` on ``docs`` (the whole corpus), with predictions.
    fast: one shard (``shard`` keys its RNG), instances in document order (masking reads the
    corpus sequentially that way); predictions are left empty for
    ``wwm_fast.masking.sample_masks``; write them in ``shuffled_order``.
    """
    sp = special_ids(tokenizer)
    _check_common(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    if mode == "compat":
        if not next_sentence:
            raise ValueError("next_sentence=False (single-segment, no NSP) is not what Google's "
                             "script does; use mode='fast'")
        out = _instances.build_compat(
            docs._as_dict(), _seed_key(random_seed), max_seq_length, max_predictions_per_seq,
            float(masked_lm_prob), float(short_seq_prob), dupe_factor, bool(do_whole_word_mask),
            sp["cls_id"], sp["sep_id"], sp["mask_id"], sp["rand_ids"])
    elif mode == "fast":
        out = _instances.build_fast(
            docs._as_dict(), int(random_seed) & (2**64 - 1), int(shard), max_seq_length,
            max_predictions_per_seq, float(masked_lm_prob), float(short_seq_prob), dupe_factor,
            bool(next_sentence), sp["rand_ids"])
        out.update(_empty_predictions(len(out["a_start"])))
    else:
        raise ValueError(f"mode must be one of ['fast', 'compat'], got {mode!r}")
    return Instances(**out)


def shuffled_order(n: int, random_seed: int = 12345, shard: int = 0) -> np.ndarray:
    """The order fast mode writes a shard's ``n`` instances in (a permutation keyed by seed, shard)."""
    return _instances.shuffled_order(int(n), int(random_seed) & (2**64 - 1), int(shard))


def _empty_predictions(n: int) -> dict:
    return {"pred_splits": np.zeros(n + 1, np.int64), "pred_positions": np.zeros(0, np.int32),
            "pred_input_ids": np.zeros(0, np.int32), "pred_labels": np.zeros(0, np.int32),
            "group_hist": np.zeros(_instances.WORD_SIZE_HIST_LEN, np.int64)}
