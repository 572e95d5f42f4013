"""From a segmenter's word strings to ``WordSpans`` over the original lines.

Owns the pieces -> spans contract for every segmenter kind; it must not call a segmenter.

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
    line_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=n), out=line_off[1:])
    text = "".join(lines)
    cuts = _cuts_if_exact(text, line_off, pieces)
    n_unmatched = 0
    if cuts is None:
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
        flat = list(chain.from_iterable(fixed))
        piece_lens = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
        cuts = np.cumsum(piece_lens) - piece_lens  # every line now rebuilds exactly
    return _spans(text, line_off, cuts), n_unmatched


_SEPARATORS = ("\x00", "\x01", "\x02", "\x03", "\ufdd0", "\ufdd1", "\U0010fffe", "\U0010ffff")


def _cuts_if_exact(text: str, line_off: np.ndarray, pieces) -> Optional[np.ndarray]:
    """Start offsets (into ``text``) of all pieces when every line's pieces rebuild exactly that
    line, else None. One pass in C: the pieces are joined with two separator characters that do
    not occur in the text (one between pieces, one between lines), and the separators are found
    with numpy."""
    seps = [c for c in _SEPARATORS if c not in text][:2]
    if len(seps) < 2:
        return None
    sep, lsep = seps
    n = len(line_off) - 1
    joined = lsep.join([sep.join(p) for p in pieces])
    if len(joined) < len(text) or joined.replace(sep, "").replace(lsep, "") != text:
        return None
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    is_sep = cps == ord(sep)
    is_lsep = cps == ord(lsep)
    counts = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
    if (int(is_lsep.sum()) != n - 1
            or int(is_sep.sum()) != int(np.sum(np.maximum(counts - 1, 0)))):
        return None  # a piece held a separator character: not a substring of the text
    marks = np.flatnonzero(is_sep | is_lsep)
    text_pos = marks - np.arange(len(marks))  # separators before each one are not text
    if not np.array_equal(text_pos[is_lsep[marks]], line_off[1:-1]):
        return None  # pieces straddle lines
    return text_pos[is_sep[marks]]


def _spans(text: str, line_off: np.ndarray, cuts: np.ndarray) -> WordSpans:
    """Spans of the maximal whitespace-free runs of ``text`` that cross no cut and no line start."""
    n_lines = len(line_off) - 1
    size = len(text)
    boundary = np.zeros(size + 1, dtype=bool)
    boundary[cuts] = True
    boundary[line_off] = True
    if _WS_RE.search(text) is None:
        bounds = np.flatnonzero(boundary)  # sorted, ends with size
        starts, ends = bounds[:-1], bounds[1:]
    else:
        is_ws = _is_ws(text)
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


def concat_spans(parts: List[WordSpans]) -> WordSpans:
    """The rows of ``parts`` one after the other, as one WordSpans."""
    if len(parts) == 1:
        return parts[0]
    starts = np.concatenate([p.starts for p in parts])
    ends = np.concatenate([p.ends for p in parts])
    rs = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        rs.append(p.row_splits[1:] + base)
        base += int(p.row_splits[-1])
    return WordSpans(starts.astype(np.int32, copy=False), ends.astype(np.int32, copy=False),
                     np.concatenate(rs).astype(np.int64, copy=False))
