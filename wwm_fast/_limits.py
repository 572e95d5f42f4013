"""The documented upper bounds of the numeric options of ``create`` (API and CLI alike).

They are policy, not only what the kernels survive (those limits are far higher): a value past
them is a typo, or would allocate gigabytes before the first record (``--max_seq_length
1000000000`` grew to 6.4 GB). The CLI checks them while parsing the command line
(wwm_fast/commands/_flags.py), ``create_instances`` again for Python callers; the README's "Flag
ranges" table lists them. This module holds only the numbers, the reasons and one check.

* ``MAX_SEQ_LENGTH`` 8192: BERT's released checkpoints have 512 positions and the longest common
  encoder contexts 8192 (ModernBERT).
* ``MAX_THREADS`` 256: the thread policy's cap (wwm_fast/_threads.py, csrc/parallel.h
  ``kMaxThreads``); worker processes take the same cap. ``-1`` means every core.
* ``MAX_DUPE_FACTOR`` 100: Google's default is 10, BERT-wwm's recipes use 5; output size and time
  grow linearly (100 passes over a 1 GB corpus write ~150 GB). More passes are better made as
  separate runs with other seeds.
* ``MAX_SEED`` 2**63 - 1, seeds >= 0: fast mode keys its RNG with 64 bits, so a negative seed
  would alias a large one (-1 and 2**64 - 1 gave the same records). Model Garden's
  ``--garden_global_seed`` takes the same range (Python's ``random.seed`` would alias -n and n).
* ``MAX_NGRAM_SIZE`` 2048 (``--max_ngram_size``, ``--reference garden``; also at most
  ``max_seq_length - 3``): Model Garden lists and shuffles every n-gram of every size up to N in
  each instance, N x max_seq_length candidates; 2048 x 8192 = 2**24 is the native kernel's bound
  (``_garden.MAX_NGRAM_WORK``), so every value in range runs. Its users pick 1-4 (MacBERT: 4).
"""

from __future__ import annotations

__all__ = ["MAX_SEQ_LENGTH", "MAX_THREADS", "MAX_DUPE_FACTOR", "MAX_SEED", "MAX_NGRAM_SIZE",
           "check_int", "check_common"]

from ._threads import MAX_THREADS  # the thread policy's cap (csrc/parallel.h kMaxThreads)

MAX_SEQ_LENGTH = 8192
MAX_DUPE_FACTOR = 100
MAX_SEED = 2 ** 63 - 1
MAX_NGRAM_SIZE = 2048


def check_int(name: str, value, lo: int, hi: int, also=()) -> None:
    """ValueError naming ``name`` unless ``value`` is an int in [lo, hi] or one of ``also``
    (TypeError for a non-integer, a bool included)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if int(value) in also:
        return
    if not lo <= value <= hi:
        extra = "".join(f"{a} or " for a in also)
        raise ValueError(f"{name} must be {extra}in [{lo}, {hi}], got {value}")


def check_common(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                 dupe_factor) -> None:
    """The instance builders' checks of their shared options (TypeError for a non-integer, a bool
    included; ValueError naming the option and the value otherwise)."""
    import numbers

    from ._instances import MAX_SEQ_LENGTH as kernel_limit

    for name, value in (("max_seq_length", max_seq_length),
                        ("max_predictions_per_seq", max_predictions_per_seq),
                        ("dupe_factor", dupe_factor)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be >= 5 ([CLS] A [SEP] B [SEP] with one token "
                         f"each), got {max_seq_length}")
    if max_seq_length > kernel_limit:
        raise ValueError(f"max_seq_length must be <= {kernel_limit} (the kernels' "
                         f"limit), got {max_seq_length}")
    if max_predictions_per_seq < 1:
        raise ValueError(f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq}")
    if max_predictions_per_seq > max_seq_length:
        raise ValueError(f"max_predictions_per_seq ({max_predictions_per_seq}) cannot exceed "
                         f"max_seq_length ({max_seq_length})")
    if not 0.0 < masked_lm_prob < 1.0:
        raise ValueError(f"masked_lm_prob must be in (0, 1), got {masked_lm_prob!r}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must be in [0, 1], got {short_seq_prob!r}")
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor must be >= 1, got {dupe_factor}")
