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
           "check_int"]

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
