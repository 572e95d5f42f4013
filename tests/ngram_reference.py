"""A pure-Python reference of fast mode's n-gram whole-word sampler, written from the README's
"N-gram masking" section (not from csrc/ngram.cc), with its own port of the counter-based RNG.

tests/test_ngram.py checks that the native sampler gives exactly these predictions and
histograms, instance by instance; ``KeyedRng`` is checked against the native stream through
``_instances._py_keyed_rng``.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def splitmix64(x: int) -> int:
    x &= _M64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    x ^= x >> 31
    return x


class KeyedRng:
    """Output n (n = 1, 2, ...) of stream ``key`` is splitmix64(key + n * golden gamma)."""

    def __init__(self, key: int):
        self.key = int(key) & _M64
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return splitmix64(self.key + self.counter * _GAMMA)

    def random(self) -> float:
        return (self.next() >> 11) / 9007199254740992.0

    def randbelow(self, n: int) -> int:
        """Lemire's multiply-shift with rejection of the low words below 2^64 mod n."""
        m = self.next() * n
        if (m & _M64) < n:
            threshold = ((1 << 64) - n) % n
            while (m & _M64) < threshold:
                m = self.next() * n
        return m >> 64


def cumulative(probs: Sequence[float]) -> List[float]:
    """P(size <= k), running sums divided by the total; the last size of positive probability
    (and any after it) gets 2.0, so every draw in [0, 1) finds a size."""
    total = 0.0
    for p in probs:
        total += p
    cum, acc, last = [], 0.0, 0
    for k, p in enumerate(probs):
        acc += p
        cum.append(acc / total)
        if p > 0:
            last = k
    for k in range(last, len(cum)):
        cum[k] = 2.0
    return cum


def budget(length: int, max_predictions: int, masked_lm_prob: float) -> int:
    return min(max_predictions, max(1, int(round(length * masked_lm_prob))))


def sample_instance(a_ids, a_ws, b_ids, b_ws, key: int, probs: Sequence[float],
                    max_predictions: int, masked_lm_prob: float, mask_id: int,
                    rand_ids: np.ndarray, whole_word: bool = True) -> Dict[str, object]:
    """Predictions of one instance [CLS] A [SEP] (B [SEP]): positions (ascending), shown ids,
    labels, and the n-grams as (drawn size, first word, words, tokens) in the order chosen."""
    tokens = [-1] + list(a_ids) + [-1]
    if len(b_ids):
        tokens += list(b_ids) + [-1]
    words: List[List[int]] = []  # positions of each word, A's words first
    segment: List[int] = []
    for seg, (ids, ws, first) in enumerate(((a_ids, a_ws, 1), (b_ids, b_ws, len(a_ids) + 2))):
        for j in range(len(ids)):
            if j == 0 or not whole_word or ws[j]:
                words.append([])
                segment.append(seg)
            words[-1].append(first + j)
    n_words = len(words)
    cum = cumulative(probs)
    rng = KeyedRng(key)
    room = budget(len(tokens), max_predictions, masked_lm_prob)
    order = list(range(n_words))
    masked = [False] * n_words
    shown: Dict[int, int] = {}
    ngrams = []
    for idx in range(n_words):
        if room <= 0:
            break
        j = idx + rng.randbelow(n_words - idx)
        order[idx], order[j] = order[j], order[idx]
        w = order[idx]
        if masked[w] or len(words[w]) > room:
            continue
        u = rng.random()
        n = next(k + 1 for k, c in enumerate(cum) if u < c)
        lo, hi, size = w, w, len(words[w])  # words lo..hi

        def free(x):
            return 0 <= x < n_words and segment[x] == segment[w] and not masked[x] \
                and size + len(words[x]) <= room

        while hi - lo + 1 < n and free(hi + 1):
            hi += 1
            size += len(words[hi])
        while hi - lo + 1 < n and free(lo - 1):
            lo -= 1
            size += len(words[lo])
        for x in range(lo, hi + 1):
            masked[x] = True
            for pos in words[x]:
                if rng.random() < 0.8:
                    shown[pos] = mask_id
                elif rng.random() < 0.5:
                    shown[pos] = tokens[pos]
                else:
                    shown[pos] = int(rand_ids[rng.randbelow(len(rand_ids))])
        ngrams.append((n, lo, hi - lo + 1, size))
        room -= size
    positions = sorted(shown)
    return {"positions": positions, "input_ids": [shown[p] for p in positions],
            "labels": [tokens[p] for p in positions], "ngrams": ngrams,
            "word_sizes": [len(words[x]) for x in range(n_words) if masked[x]]}
