"""From a segmenter's word strings to ``WordSpans`` over the original lines.

Every segmenter returns, per line, a list of strings ("pieces"). The contract of ``WordSpans`` is
stricter than what segmenters deliver, so the pieces are turned into spans here, once, for all of
them:

* a word never contains whitespace (``str.isspace``: the tokenizer splits there anyway); LTP glues
  spaces onto words (``"中国 "``, ``"叫 汤"``): such pieces are cut at the whitespace;
* every non-whitespace character of the line belongs to exactly one word, even where the segmenter
  dropped characters (LTP returns nothing for a line of spaces and drops leading spaces): pieces are
  matched to the line by their non-whitespace characters;
* spans are code point offsets into the line exactly as given (start inclusive, end exclusive).

The common case (pieces concatenate to the line) is vectorised over the whole batch: a few numpy
passes over one boolean per character. Lines whose pieces do not rebuild the line are repaired one
by one; a line that cannot be matched at all (the segmenter changed characters) gets one word per
character -- no whole-word grouping, as HFL did for unalignable samples -- and is counted.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..alignment import WordSpans

# Every code point for which str.isspace() is true lies at or below U+3000 (checked in the tests).
_WS_LIMIT = 0x3000
_WS_TABLE = np.zeros(_WS_LIMIT + 2, dtype=bool)
_WS_TABLE[[c for c in range(_WS_LIMIT + 1) if chr(c).isspace()]] = True
_WS_RE = re.compile(r"\s")  # str patterns: \s is exactly str.isspace()


def empty_spans(n_lines: int) -> WordSpans:
    return WordSpans(np.zeros(0, np.int32), np.zeros(0, np.int32),
                     np.zeros(n_lines + 1, np.int64))


def _is_ws(text: str) -> np.ndarray:
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return _WS_TABLE[np.minimum(cps, _WS_LIMIT + 1)]


def nonspace_signature(text: str) -> str:
    """``text`` without its whitespace characters."""
    return "".join(text.split()) if _WS_RE.search(text) else text


def repair_pieces(line: str, pieces: Sequence[str]) -> Optional[List[str]]:
    """Pieces that concatenate to ``line`` exactly, matched by non-whitespace characters.

    Returns None when the non-whitespace characters of the pieces differ from the line's.
    Whitespace of the line is attached to the preceding piece (it belongs to no word anyway).
    """
    if nonspace_signature("".join(pieces)) != nonspace_signature(line):
        return None
    # positions of the line's non-whitespace characters, in order
    positions = [i for i, c in enumerate(line) if not c.isspace()]
    cuts = []
    k = 0  # non-whitespace characters consumed so far
    for piece in pieces:
        n = len(nonspace_signature(piece))
        if n:
            cuts.append(positions[k])
            k += n
    if not cuts:
        return [line] if line else []
    cuts[0] = 0
    cuts.append(len(line))
    return [line[a:b] for a, b in zip(cuts, cuts[1:])]


def spans_from_pieces(lines: Sequence[str], pieces: Sequence[Sequence[str]], *,
                      on_mismatch=None) -> Tuple[WordSpans, int]:
    """``WordSpans`` of ``lines`` from per-line word strings.

    ``on_mismatch(i, line, pieces)`` is called for a line whose pieces cannot be matched to it
    (it may raise); without it such a line gets one word per character. Returns the spans and the
    number of such lines.
    """
    n = len(lines)
    if len(pieces) != n:
        raise ValueError(f"segmenter returned {len(pieces)} results for {n} lines")
    if n == 0:
        return empty_spans(0), 0
    line_lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    counts = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
    flat = list(chain.from_iterable(pieces))
    piece_lens = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
    text = "".join(lines)
    n_unmatched = 0
    if not _lines_match(text, flat, piece_lens, counts, line_lens):
        fixed = list(pieces)
        for i, (line, p) in enumerate(zip(lines, pieces)):
            if "".join(p) == line:
                continue
            r = repair_pieces(line, p)
            if r is None:
                if on_mismatch is not None:
                    on_mismatch(i, line, p)
                n_unmatched += 1
                r = list(line)
            fixed[i] = r
        counts = np.fromiter(map(len, fixed), dtype=np.int64, count=n)
        flat = list(chain.from_iterable(fixed))
        piece_lens = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
    return _spans(text, line_lens, piece_lens), n_unmatched


def _lines_match(text, flat, piece_lens, counts, line_lens) -> bool:
    """True when every line's pieces concatenate to exactly that line."""
    if "".join(flat) != text:
        return False
    # the whole batch matches; check the per-line totals (pieces may not straddle lines)
    piece_end = np.cumsum(piece_lens)
    last_piece = np.cumsum(counts) - 1
    totals = np.where(last_piece >= 0, piece_end[np.maximum(last_piece, 0)] if len(piece_end)
                      else 0, 0)
    return bool(np.array_equal(totals, np.cumsum(line_lens)))


def _spans(text: str, line_lens: np.ndarray, piece_lens: np.ndarray) -> WordSpans:
    n_lines = len(line_lens)
    line_off = np.zeros(n_lines + 1, dtype=np.int64)
    np.cumsum(line_lens, out=line_off[1:])
    piece_end = np.cumsum(piece_lens)
    piece_start = piece_end - piece_lens
    keep = piece_lens > 0
    piece_start, piece_end = piece_start[keep], piece_end[keep]
    if _WS_RE.search(text) is None:
        starts, ends = piece_start, piece_end
    else:
        size = len(text)
        is_ws = _is_ws(text)
        boundary = np.zeros(size + 1, dtype=bool)
        boundary[piece_start] = True
        boundary[line_off] = True
        nonws = ~is_ws
        prev_ws = np.empty(size, dtype=bool)
        prev_ws[0] = True
        prev_ws[1:] = is_ws[:-1]
        next_ws = np.empty(size, dtype=bool)
        next_ws[-1] = True
        next_ws[:-1] = is_ws[1:]
        starts = np.flatnonzero(nonws & (boundary[:-1] | prev_ws))
        ends = np.flatnonzero(nonws & (boundary[1:] | next_ws)) + 1
    row_splits = np.searchsorted(starts, line_off, side="left").astype(np.int64)
    line_of = np.repeat(np.arange(n_lines, dtype=np.int64), np.diff(row_splits))
    base = line_off[line_of]
    return WordSpans((starts - base).astype(np.int32), (ends - base).astype(np.int32), row_splits)


def spans_to_words(lines: Sequence[str], words: WordSpans) -> List[List[str]]:
    """The word strings of each line (for display and tests)."""
    out = []
    rs = words.row_splits
    st = words.starts.tolist()
    en = words.ends.tolist()
    for i, line in enumerate(lines):
        a, b = int(rs[i]), int(rs[i + 1])
        out.append([line[s:e] for s, e in zip(st[a:b], en[a:b])])
    return out
