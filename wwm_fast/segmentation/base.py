"""The segmenter interface: ``Segmenter``, which every segmenter kind subclasses.

Owns the contract of a segmentation (``segment_batch`` -> ``WordSpans``: every non-whitespace
character of a line in exactly one word) and the helpers the kinds share (model file hashing).
It must not know the kinds: building a segmenter from a spec string is
``wwm_fast.segmentation.registry`` (``get_segmenter``), which imports the kinds, which import this.
"""

from __future__ import annotations

import abc
import os
from typing import List, Optional, Sequence

import numpy as np

from ..alignment import WordSpans
from .._threads import check_num_threads
from ._spans import spans_from_pieces, spans_to_words

__all__ = ["Segmenter", "sha256_file", "abspath"]


class Segmenter(abc.ABC):
    """Word segmentation of a batch of lines as ``WordSpans`` (code point spans per line).

    Every non-whitespace character of a line belongs to exactly one word; whitespace belongs to
    none; spans are sorted and do not overlap. Subclasses implement ``_segment(lines)``, returning
    a list of word strings per line; this class turns them into spans over the original lines,
    whatever the segmenter did to whitespace (see ``wwm_fast.segmentation._spans``).

    Attributes
    ----------
    spec : str
        Canonical spec, recorded in caches (``get_segmenter(spec)`` rebuilds the segmenter).
    num_threads : int
        Threads inside the segmenter (LTP); 1 = the calling thread only.
    n_unmatched : int
        Lines so far whose segmenter output could not be matched to the line (they got one word
        per character). Always 0 for LTP legacy and jieba in practice.
    """

    kind: str = ""

    def __init__(self, spec: str, num_threads: int = 1):
        self.spec = spec
        self.num_threads = check_num_threads(num_threads)
        self.n_unmatched = 0

    @abc.abstractmethod
    def _segment(self, lines: List[str]) -> Sequence[Sequence[str]]:
        """Word strings of each line (may glue or drop whitespace; see the class docstring)."""

    def segment_batch(self, lines: Sequence[str], *, source: Optional[str] = None,
                      line_offset: int = 0) -> WordSpans:
        """Segment many lines; ``lines[i]``'s words are row ``i`` of the result.

        ``source`` and ``line_offset`` only serve error messages (``source: line N``, with
        ``N = line_offset + i + 1``).
        """
        lines = _check_lines(lines)
        if not lines:
            return WordSpans(np.zeros(0, np.int32), np.zeros(0, np.int32),
                             np.zeros(1, np.int64))
        words, n_bad = spans_from_pieces(lines, self._segment(lines))
        self.n_unmatched += n_bad
        return words

    def segment(self, line: str) -> List[str]:
        """The words of one line as strings (whitespace excluded)."""
        return self.words([line])[0]

    def words(self, lines: Sequence[str]) -> List[List[str]]:
        """The words of each line as strings (whitespace excluded)."""
        lines = _check_lines(lines)
        return spans_to_words(lines, self.segment_batch(lines))

    def close(self) -> None:
        """Release the model (optional; the segmenter is unusable afterwards)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, num_threads={self.num_threads})"


def _check_lines(lines) -> List[str]:
    if isinstance(lines, (str, bytes)):
        raise TypeError("lines must be a sequence of str, not a single str/bytes; "
                        "use segment() for one line")
    lines = list(lines)
    for x in lines:
        if not isinstance(x, str):
            raise TypeError(f"lines must all be str (decode them with wwm_fast.files."
                            f"decode_lines), got an item of type {type(x).__name__}")
    return lines


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def abspath(path: str) -> str:
    """``path`` absolute, ``~`` expanded (how model and dictionary paths enter a spec)."""
    return os.path.abspath(os.path.expanduser(path))
