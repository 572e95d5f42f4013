"""Whole-word alignment of a word segmentation to WordPiece tokens (stage 2 of the data flow).

A token continues the previous token's word when it is a WordPiece ``##`` piece, or when both lie
inside the same segmenter word, by character offsets (BERT_DATA_SPEC §5.4). ``[UNK]`` inside a
word stays in the word (``鳜鱼`` -> ``[UNK] 鱼`` is one word). Ids never change.

Where a line's segmentation cannot be aligned -- a token is not inside one word, or a WordPiece word
(``６ ##℃``) spans two segmenter words (``６`` / ``℃``) -- the line falls back to ``##``-only
grouping, as HFL did for Chinese-BERT-wwm, and is reported in ``AlignResult.fallback``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _check_build  # noqa: F401
from . import _align
from ._threads import resolve_num_threads
from .tokenization import Encoding

__all__ = ["WordSpans", "AlignResult", "align_words"]


class WordSpans(NamedTuple):
    """Words of a batch of lines: line ``i`` owns words ``row_splits[i]:row_splits[i + 1]``.

    ``starts``/``ends`` are code point offsets into the line (start inclusive, end exclusive),
    sorted and non-overlapping; characters outside every word (spaces) belong to no word.
    """

    starts: np.ndarray  # int32 [n_words]
    ends: np.ndarray  # int32 [n_words]
    row_splits: np.ndarray  # int64 [n_lines + 1]


class AlignResult(NamedTuple):
    word_start: np.ndarray  # uint8 [n_tokens]: 1 = the token starts a new whole word
    fallback: np.ndarray  # uint8 [n_lines]: 1 = the line fell back to ##-only grouping
    n_fallback: int


def align_words(encoding: Encoding, words: WordSpans, is_subword: np.ndarray, *,
                num_threads: int = 1) -> AlignResult:
    """One "starts a whole word" flag per token.

    Parameters
    ----------
    encoding : Encoding
        Tokens of the lines (``FullTokenizer.encode_batch`` / ``encode_file``).
    words : WordSpans
        The segmentation of the same lines (a segmenter's output, or a segmentation cache).
    is_subword : uint8 array
        1 where the token is a ``##`` piece (``FullTokenizer.is_subword(encoding.ids)``).

    Equivalent to (per line, ``word_of`` = index of the word containing the token)::

        flag[t] = not (is_subword[t] or (t > 0 and word_of(t) == word_of(t - 1)))
    """
    num_threads = resolve_num_threads(num_threads)
    n_lines = len(encoding.row_splits) - 1
    if len(words.row_splits) != n_lines + 1:
        raise ValueError(
            f"words cover {len(words.row_splits) - 1} lines but the encoding has {n_lines}")
    n_tokens = len(encoding.ids)
    word_start = np.empty(n_tokens, dtype=np.uint8)
    fallback = np.empty(n_lines, dtype=np.uint8)
    n = _align.align_words(
        np.ascontiguousarray(encoding.starts, dtype=np.int32),
        np.ascontiguousarray(encoding.ends, dtype=np.int32),
        np.ascontiguousarray(is_subword, dtype=np.uint8),
        np.ascontiguousarray(encoding.row_splits, dtype=np.int64),
        np.ascontiguousarray(words.starts, dtype=np.int32),
        np.ascontiguousarray(words.ends, dtype=np.int32),
        np.ascontiguousarray(words.row_splits, dtype=np.int64),
        word_start, fallback, num_threads)
    return AlignResult(word_start, fallback, int(n))
