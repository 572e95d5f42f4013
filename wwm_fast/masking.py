"""The whole-word masked-LM sampler of fast mode (stage 5 of the data flow), native, vectorised.

For every instance: candidate groups from the word-start flags (a group never crosses [SEP]; the
first token of each segment starts one), shuffled by the instance's own counter-based RNG stream,
at most ``max_predictions_per_seq`` predictions with a group that would overflow skipped, and the
80/10/10 [MASK]/keep/random choice made per token, random ids uniform over the vocab. This is
Google's ``create_masked_lm_predictions`` with whole-word groups, so with the same seed the
statistics match compat mode (tests/test_create.py checks them).

With ``ngram_probs`` (``create --ngram_masking``) the units are n-grams of whole words, n drawn
from the table (MacBERT: 1-4 words, 40/30/20/10%), never across [SEP]; the algorithm is stated in
csrc/ngram.h and the README. ``parse_ngram_probs`` validates a table for every entry point.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from . import _check_build  # noqa: F401
from . import _masking
from ._threads import resolve_num_threads
from .instances import Documents, Instances, special_ids
from .tokenization import FullTokenizer

__all__ = ["sample_masks", "parse_ngram_probs", "WORD_SIZE_HIST_LEN", "MAX_NGRAM_TABLE_SIZE",
           "MACBERT_NGRAM_PROBS"]

#: Length of ``Instances.group_hist``, the histogram of masked whole words by size: index k in
#: 1..15 counts words of k tokens, the last entry words of 16 or more (index 0 is unused).
#: Defined once, in csrc/masking.h.
WORD_SIZE_HIST_LEN: int = _masking.WORD_SIZE_HIST_LEN

#: Longest n-gram (in whole words) an n-gram table may ask for; the n-gram histograms
#: (``Instances.ngram_hist``, ``ngram_drawn_hist``) have MAX_NGRAM_TABLE_SIZE + 1 entries, index 0
#: unused. Defined once, in csrc/ngram.h.
MAX_NGRAM_TABLE_SIZE: int = _masking.MAX_NGRAM_TABLE_SIZE

#: MacBERT's table: 1-, 2-, 3- and 4-grams of whole words with 40/30/20/10%.
MACBERT_NGRAM_PROBS: Tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)

#: How far a table's sum may be from 1 (it is then normalised): csrc/ngram.h's tolerance.
NGRAM_SUM_TOLERANCE = 1e-5


def parse_ngram_probs(value: Union[str, Sequence[float]],
                      name: str = "ngram_probs") -> Tuple[float, ...]:
    """The n-gram size table ``value`` (``"0.4,0.3,0.2,0.1"`` or a sequence of numbers), checked:
    entry k is the probability of an n-gram of k whole words; 1 to MAX_NGRAM_TABLE_SIZE entries,
    each a finite number >= 0, summing to 1 (within 1e-5). ValueError (TypeError for a non-number in a
    sequence) names ``name`` and the value; ``name=""`` leaves the name to the caller (the CLI's
    parser puts ``argument --ngram_probs:`` first)."""
    def where(shown: str) -> str:
        return f"{name} {shown}" if name else repr(shown)

    example = (f"give 1 to {MAX_NGRAM_TABLE_SIZE} comma-separated probabilities of 1-, 2-, ... "
               f"word n-grams, e.g. 0.4,0.3,0.2,0.1")
    if isinstance(value, str):
        if value.strip() == "":
            raise ValueError(f"{name + ' is ' if name else ''}empty: {example}")
        probs = []
        for k, p in enumerate((p.strip() for p in value.split(",")), 1):
            try:
                probs.append(float(p))
            except ValueError:
                raise ValueError(f"{where(value)}: entry {k} ({p!r}) is not a number") from None
        shown = value
    else:
        try:
            probs = list(value)
        except TypeError:
            raise TypeError(f"{name} must be a comma-separated string or a sequence of numbers, "
                            f"got {value!r}") from None
        for k, p in enumerate(probs, 1):
            if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name} entry {k} must be a number, got {p!r}")
        probs = [float(p) for p in probs]
        shown = ",".join(f"{p:g}" for p in probs)
    if not probs:
        raise ValueError(f"{name + ' is ' if name else ''}empty: {example}")
    if len(probs) > MAX_NGRAM_TABLE_SIZE:
        raise ValueError(f"{where(shown)}: {len(probs)} entries, at most {MAX_NGRAM_TABLE_SIZE} "
                         f"(n-grams of up to {MAX_NGRAM_TABLE_SIZE} whole words)")
    for k, p in enumerate(probs, 1):
        if not math.isfinite(p) or p < 0:
            raise ValueError(f"{where(shown)}: the probability of {k}-grams must be a finite "
                             f"number >= 0, got {p!r}")
    total = math.fsum(probs)
    if abs(total - 1.0) > NGRAM_SUM_TOLERANCE:
        raise ValueError(f"{where(shown)}: probabilities must sum to 1, they sum to {total:.6g}")
    return tuple(probs)


def sample_masks(docs: Documents, instances: Instances, tokenizer: FullTokenizer, *,
                 max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                 masked_lm_prob: float = 0.15, do_whole_word_mask: bool = True,
                 num_threads: int = 1,
                 ngram_probs: Optional[Union[str, Sequence[float]]] = None) -> Instances:
    """Predictions for every instance; returns ``instances`` with the prediction fields set.

    Output is identical for any ``num_threads``: each instance draws from the stream of its key.
    ``ngram_probs`` (e.g. ``MACBERT_NGRAM_PROBS``) masks n-grams of whole words instead of single
    words and sets ``ngram_hist`` and ``ngram_drawn_hist`` (n-grams by size in words, as masked
    and as drawn); ``None`` (default) is the whole-word sampler.
    """
    num_threads = resolve_num_threads(num_threads)
    sp = special_ids(tokenizer)
    if ngram_probs is not None:
        probs = np.array(parse_ngram_probs(ngram_probs), dtype=np.float64)
        preds = _masking.sample_ngram_masks(
            docs._as_dict(), instances._as_dict(), max_seq_length, max_predictions_per_seq,
            float(masked_lm_prob), bool(do_whole_word_mask), probs, sp["mask_id"],
            sp["rand_ids"], num_threads)
        return instances._replace(**preds)
    preds = _masking.sample_masks(
        docs._as_dict(), instances._as_dict(), max_seq_length, max_predictions_per_seq,
        float(masked_lm_prob), bool(do_whole_word_mask), sp["mask_id"], sp["rand_ids"],
        num_threads)
    return instances._replace(**preds)
