"""The whole-word masked-LM sampler of fast mode (stage 5 of the data flow), native, vectorised.

For every instance: candidate groups from the word-start flags (a group never crosses [SEP]; the
first token of each segment starts one), shuffled by the instance's own counter-based RNG stream,
at most ``max_predictions_per_seq`` predictions with a group that would overflow skipped, and the
80/10/10 [MASK]/keep/random choice made per token, random ids uniform over the vocab. This is
Google's ``create_masked_lm_predictions`` with whole-word groups, so with the same seed the
statistics match compat mode (tests/test_create.py checks them).
"""

from __future__ import annotations

import numpy as np

from . import _check_build  # noqa: F401
from . import _masking
from ._threads import resolve_num_threads
from .instances import Documents, Instances, special_ids
from .tokenization import FullTokenizer

__all__ = ["sample_masks", "WORD_SIZE_HIST_LEN"]

#: Length of ``Instances.group_hist``, the histogram of masked whole words by size: index k in
#: 1..15 counts words of k tokens, the last entry words of 16 or more (index 0 is unused).
#: Defined once, in csrc/masking.h.
WORD_SIZE_HIST_LEN: int = _masking.WORD_SIZE_HIST_LEN


def sample_masks(docs: Documents, instances: Instances, tokenizer: FullTokenizer, *,
                 max_seq_length: int = 128, max_predictions_per_seq: int = 20,
                 masked_lm_prob: float = 0.15, do_whole_word_mask: bool = True,
                 num_threads: int = 1) -> Instances:
    """Predictions for every instance; returns ``instances`` with the prediction fields set.

    Output is identical for any ``num_threads``: each instance draws from the stream of its key.
    """
    num_threads = resolve_num_threads(num_threads)
    sp = special_ids(tokenizer)
    preds = _masking.sample_masks(
        docs._as_dict(), instances._as_dict(), max_seq_length, max_predictions_per_seq,
        float(masked_lm_prob), bool(do_whole_word_mask), sp["mask_id"], sp["rand_ids"],
        num_threads)
    return instances._replace(**preds)
