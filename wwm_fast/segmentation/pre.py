"""Pre-segmented input: the words come with the text, separated by a delimiter.

One segmenter kind (``pre``, built by registry.py); it must not import the registry.

Two uses:

* the raw lines and their segmented twins (line-aligned, e.g. ``people_daily_199801.txt`` and
  ``people_daily_199801.seg.txt``): ``segment_batch(raw_lines, segmented=seg_lines)``. The words
  must rebuild the raw line, whitespace ignored; a line where they do not is an error naming the
  file and line. The spans point into the raw lines, so the text that is tokenized is the raw text.
* segmented lines alone, with a whitespace delimiter: ``segment_batch(seg_lines)``; the words are
  the runs between delimiters and the text that is tokenized is the segmented line itself (for the
  Chinese tokenizer the only difference from the raw text is that a delimiter inside a
  non-Chinese run splits it: ``６ ℃`` instead of ``６℃``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from ..alignment import WordSpans
from ._spans import nonspace_signature, spans_from_pieces
from .base import Segmenter, _check_lines

__all__ = ["PreSegmenter"]


class PreSegmenter(Segmenter):
    """Words given by a delimiter (``pre:DELIM``; ``pre`` alone = one space)."""

    kind = "pre"

    def __init__(self, delimiter: str = " ", num_threads: int = 1):
        if not isinstance(delimiter, str) or delimiter == "":
            raise ValueError(f"pre-segmented delimiter must be a non-empty string, "
                             f"got {delimiter!r}")
        super().__init__(f"pre:{delimiter}", num_threads)
        self.delimiter = delimiter

    def split(self, segmented_line: str) -> List[str]:
        return [w for w in segmented_line.split(self.delimiter) if w]

    def _segment(self, lines: List[str]):
        if not self.delimiter.isspace():
            raise ValueError(
                f"pre-segmented delimiter {self.delimiter!r} is not whitespace, so it would be "
                f"tokenized as text: give the raw lines and the segmented lines separately "
                f"(segment_batch(raw_lines, segmented=...), or --segmented_file)")
        return [self.split(line) for line in lines]

    def segment_batch(self, lines: Sequence[str], *, segmented: Optional[Sequence[str]] = None,
                      source: Optional[str] = None, segmented_source: Optional[str] = None,
                      line_offset: int = 0) -> WordSpans:
        """Spans of the words over ``lines``.

        With ``segmented`` (the same lines with words separated by the delimiter), the words of
        ``segmented[i]`` must rebuild ``lines[i]`` whitespace ignored, else ValueError naming
        ``source``/``segmented_source`` and the line (``line_offset + i + 1``).
        """
        if segmented is None:
            return super().segment_batch(lines, source=source, line_offset=line_offset)
        lines = _check_lines(lines)
        segmented = _check_lines(segmented)
        if len(segmented) != len(lines):
            raise ValueError(
                f"{segmented_source or 'segmented'} has {len(segmented)} lines but "
                f"{source or 'the input'} has {len(lines)}: they must be line-aligned")
        pieces = [self.split(s) for s in segmented]

        def mismatch(i, line, words):
            joined = nonspace_signature("".join(words))
            raw = nonspace_signature(line)
            k = next((j for j, (a, b) in enumerate(zip(joined, raw)) if a != b),
                     min(len(joined), len(raw)))
            raise ValueError(
                f"{segmented_source or 'segmented text'}: line {line_offset + i + 1}: the "
                f"pre-segmented words do not rebuild line {line_offset + i + 1} of "
                f"{source or 'the input'} (whitespace ignored): they differ at character {k}: "
                f"words give {joined[max(0, k - 10):k + 10]!r}, the line has "
                f"{raw[max(0, k - 10):k + 10]!r}")

        words, _ = spans_from_pieces(lines, pieces, on_mismatch=mismatch)
        return words
