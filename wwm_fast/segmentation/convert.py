"""Segment through a converted view of the text (``wwm-fast segment --convert t2s``): `segment` stage.

LTP's models and the People's Daily gold are in simplified script; a segmenter trained on them cuts
traditional text worse. ``ConvertedSegmenter`` wraps any segmenter: it converts each line with
OpenCC (``t2s``, ``tw2s``, ``hk2s``, ... any config of the installed ``opencc`` package), segments
the converted copy, and maps the word boundaries back onto the *original* line. The spans point
into the original text, so everything downstream (tokens, ids, records) is what it would be
without conversion; only where the words begin and end changes.

>>> seg = ConvertedSegmenter(get_segmenter("ltp:cws.bin"), "t2s")    # doctest: +SKIP
>>> seg.segment("們說這個軟體很好")                                   # doctest: +SKIP
['們', '說', '這個', '軟體', '很', '好']

Mapping back. Most OpenCC conversions replace each character by one character (every dictionary
of ``t2s``, ``tw2s``, ``hk2s``, ``s2t``, ... maps a phrase to a phrase of the same length), so a
converted line of the same length lines up character by character, and its spans are the
original's. The regional-phrase configs (``tw2sp``, ``hk2sp``, ``s2twp``, ``s2hkp``) replace
phrases by phrases of another length (``記憶體`` -> ``内存``, ``埠`` -> ``端口``). For them, and
for any line whose length changed, the line is aligned with its character-by-character conversion
(each character converted alone, which keeps one original character per piece): the opcodes of
``difflib.SequenceMatcher`` between the two give blocks of original <-> converted characters;
blocks of equal length map character by character, and an n:m block (a phrase that changed
length) goes whole into the word of its first converted character, so a boundary inside such a
phrase has no counterpart and is dropped. Every non-whitespace character of the original still
belongs to exactly one word.

A line whose conversion cannot be lined up with it (whitespace where the original has none or the
reverse, in a block that maps character by character; OpenCC never does this, but a dictionary
could) is segmented unconverted instead and counted in ``n_convert_fallback`` (``wwm-fast
segment`` reports it). ``n_convert_realigned`` counts the lines that needed the alignment.

The spec of a converted segmenter is the inner spec plus ``|convert=opencc:CONFIG@VERSION``
(``ltp-legacy:/m/cws.bin#3c218c9571f9|convert=opencc:t2s@1.4.2``): segmentation caches record it,
so caches made with and without conversion (or with another OpenCC version) are never mixed up,
and ``get_segmenter(spec)`` rebuilds the same converted segmenter (``|convert=t2s`` is accepted
too, e.g. in ``wwm-fast create --segmenter``).
"""

from __future__ import annotations

import json
import os
from difflib import SequenceMatcher
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..alignment import WordSpans
from ._spans import _is_ws, empty_spans, spans_from_pieces
from .base import Segmenter, _check_lines

__all__ = ["ConvertedSegmenter", "OpenCCConverter", "get_converter", "opencc_configs",
           "SPEC_SEP", "OPENCC_EXTRA"]

SPEC_SEP = "|convert="
OPENCC_EXTRA = "opencc"  # pip install 'wwm-fast[opencc]'

# OpenCC dictionaries whose every entry maps a key to a value of the same length (checked against
# the installed package by tests/test_convert.py). A config made only of these converts each
# phrase to a phrase of its length, so a line keeps its length and lines up character by
# character. The regional phrase dictionaries (TWPhrases, TWPhrasesRev, HKPhrases, HKPhrasesRev:
# 記憶體 -> 内存) are not in the list: configs using them are aligned line by line.
LENGTH_PRESERVING_DICTS = frozenset({
    "CJK_Compatibility_Ideographs", "HKVariants", "HKVariantsPhrases", "HKVariantsRev",
    "HKVariantsRevPhrases", "JPShinjitaiCharacters", "JPShinjitaiCharactersRev",
    "JPShinjitaiPhrases", "STCharacters", "STPhrases", "STPhrases_GeneratedFromRegionalPhrases",
    "TSCharacters", "TSCharactersExt", "TSPhrases", "TWVariants", "TWVariantsPhrases",
    "TWVariantsRev", "TWVariantsRevPhrases",
})


def _import_opencc():
    try:
        import opencc
    except ImportError:
        raise ValueError(f"--convert needs the package opencc, which is not installed: "
                         f"pip install 'wwm-fast[{OPENCC_EXTRA}]'") from None
    return opencc


def _share_dir(opencc) -> Optional[str]:
    for d in (getattr(opencc, "_opencc_share_dir", None),
              os.path.join(os.path.dirname(opencc.__file__), "clib", "share", "opencc")):
        if d and os.path.isdir(d):
            return d
    return None


def opencc_configs() -> List[str]:
    """Names of the OpenCC configs of the installed ``opencc`` package (``t2s``, ``tw2s``, ...)."""
    opencc = _import_opencc()
    names = getattr(opencc, "CONFIGS", None)
    if not names:
        share = _share_dir(opencc)
        names = os.listdir(share) if share else []
    return sorted({n[:-5] for n in names if n.endswith(".json")})


def _opencc_version(opencc) -> str:
    v = getattr(opencc, "__version__", None)
    if not v:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("opencc")
        except PackageNotFoundError:  # pragma: no cover - imported, so it is installed
            v = "unknown"
    return str(v)


def _config_dicts(path: Optional[str]) -> Optional[List[str]]:
    """Dictionary names (file names without extension) a config JSON uses; None if unreadable."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    out: List[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str):
                out.append(os.path.splitext(os.path.basename(f))[0])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return out


class OpenCCConverter:
    """One OpenCC config, loaded once per process, converting batches of lines.

    Parameters
    ----------
    config : str
        An OpenCC config name (``t2s``, ``tw2s``, ...; ``t2s.json`` and ``opencc:t2s`` also
        accepted); ``opencc_configs()`` lists them.
    version : str, optional
        The OpenCC version recorded in a spec: another installed version is refused (its
        dictionaries may convert differently).

    Attributes
    ----------
    spec : str
        ``opencc:CONFIG@VERSION``, as recorded in caches.
    may_change_length : bool
        False when every dictionary of the config is known to keep phrase lengths
        (``LENGTH_PRESERVING_DICTS``): same-length lines then line up character by character.
    """

    def __init__(self, config: str, version: Optional[str] = None):
        if not isinstance(config, str):
            raise TypeError(f"convert must be an OpenCC config name (str), got "
                            f"{type(config).__name__}")
        opencc = _import_opencc()
        name = config.strip()
        if name.lower().startswith("opencc:"):
            name = name[len("opencc:"):]
        if name.endswith(".json"):
            name = name[:-5]
        valid = opencc_configs()
        if name not in valid:
            raise ValueError(f"unknown OpenCC config {config!r} for convert: expected one of "
                             f"{', '.join(valid)} (t2s: traditional to simplified)")
        installed = _opencc_version(opencc)
        if version is not None and version != installed:
            raise ValueError(f"conversion 'opencc:{name}@{version}' was recorded with OpenCC "
                             f"{version}, but {installed} is installed: re-segment with this "
                             f"version")
        try:
            self._cc = opencc.OpenCC(name + ".json")
        except Exception as e:  # the C++ library raises RuntimeError for a missing file
            raise ValueError(f"OpenCC cannot load the config {name!r}: {e}") from None
        self.config = name
        self.version = installed
        self.spec = f"opencc:{name}@{installed}"
        share = _share_dir(opencc)
        path = getattr(self._cc, "config", None)
        if not (isinstance(path, str) and os.path.isfile(path)) and share:
            path = os.path.join(share, name + ".json")
        dicts = _config_dicts(path)
        self.dictionaries = tuple(dicts) if dicts is not None else None
        self.may_change_length = dicts is None or not set(dicts) <= LENGTH_PRESERVING_DICTS
        self._chars: Dict[int, str] = {}  # code point -> its conversion alone

    def __repr__(self) -> str:
        return f"OpenCCConverter({self.spec!r})"

    def convert(self, text: str) -> str:
        """OpenCC's conversion of ``text``."""
        return self._cc.convert(text)

    def convert_lines(self, lines: Sequence[str]) -> List[str]:
        """Each line converted (one OpenCC call for the whole batch: no OpenCC phrase contains a
        line break, so lines convert as they would alone)."""
        if not lines:
            return []
        out = self.convert("\n".join(lines)).split("\n")
        if len(out) != len(lines):  # a conversion produced a line break: convert line by line
            out = [self.convert(x) for x in lines]
        return out

    def convert_chars(self, line: str) -> List[str]:
        """The conversion of each character of ``line`` taken alone (cached per code point)."""
        table = self._chars
        missing = sorted({c for c in line if ord(c) not in table})
        if missing:
            conv = self.convert("\n".join(missing)).split("\n")
            if len(conv) != len(missing):
                conv = [self.convert(c) for c in missing]
            for c, v in zip(missing, conv):
                table[ord(c)] = v
        return [table[ord(c)] for c in line]

    def translate_chars(self, text: str) -> str:
        """``text`` with every character converted alone (``convert_chars`` joined)."""
        self.convert_chars("".join(sorted(set(text) - {"\n"})))
        return text.translate(self._chars)

    def alignment(self, line: str, converted: str) -> List[Tuple[int, int]]:
        """Cut points ``(i, j)`` where the conversion of ``line`` splits: ``converted`` is the
        conversion of ``line[:i]`` followed by that of ``line[i:]``, the first being
        ``converted[:j]``.

        Starts with ``(0, 0)`` and ends with ``(len(line), len(converted))``; between two points
        lies a block of the original and the converted text that correspond. Candidates are the
        edges of the differences between ``converted`` and the character-by-character conversion
        (``difflib.SequenceMatcher`` opcodes); each is verified by converting both sides, so a
        phrase converted as a whole (``滑鼠`` -> ``鼠标``, where a character matches at another
        place) stays one block.
        """
        pieces = self.convert_chars(line)
        per_char = "".join(pieces)
        at: Dict[int, int] = {}  # position in per_char -> original position (a char boundary)
        pos = 0
        for i, p in enumerate(pieces):
            at.setdefault(pos, i)
            pos += len(p)
        n = len(line)
        at.setdefault(pos, n)
        opcodes = SequenceMatcher(None, per_char, converted, autojunk=False).get_opcodes()
        candidates = set()
        for _tag, i1, i2, _j1, _j2 in opcodes:
            for x in (i1, i2):
                i = at.get(x)
                if i is not None and 0 < i < n:
                    candidates.add(i)
        verified = {0: 0, n: len(converted)}  # original cut -> converted cut
        a, ja = 0, 0
        for i in sorted(candidates):
            head = self.convert(line[a:i])
            j = ja + len(head)
            if converted[ja:j] == head and self.convert(line[i:]) == converted[j:]:
                verified[i] = j
                a, ja = i, j
        # inside a verified block that the matcher lines up position by position (equal text, or
        # a same-length replacement), every character boundary of the original is a point too
        points = dict(verified)
        for _tag, i1, i2, j1, j2 in opcodes:
            if i2 - i1 != j2 - j1 or i2 - i1 < 2:
                continue
            oa, ob = at.get(i1), at.get(i2)
            if verified.get(oa) != j1 or verified.get(ob) != j2:
                continue
            for x in range(i1 + 1, i2):
                i = at.get(x)
                if i is not None:
                    points.setdefault(i, j1 + x - i1)
        return sorted(points.items())


_CONVERTERS: Dict[Tuple[str, Optional[str]], OpenCCConverter] = {}


def get_converter(config: str, version: Optional[str] = None) -> OpenCCConverter:
    """An ``OpenCCConverter``, one per config and process (a config loads in ~10 ms)."""
    key = (config, version)
    conv = _CONVERTERS.get(key)
    if conv is None:
        conv = _CONVERTERS[key] = OpenCCConverter(config, version)
    return conv


def parse_convert(arg: str) -> Tuple[str, Optional[str]]:
    """``t2s`` / ``opencc:t2s`` / ``opencc:t2s@1.4.2`` -> (config, version or None)."""
    arg = arg.strip()
    version = None
    if "@" in arg:
        arg, version = arg.rsplit("@", 1)
    return arg, version


def split_spec(spec: str) -> Tuple[str, Optional[str]]:
    """``INNER|convert=ARG`` -> (INNER, ARG); a spec without conversion -> (spec, None)."""
    inner, sep, arg = spec.rpartition(SPEC_SEP)
    if not sep:
        return spec, None
    return inner, arg


def converted_from_spec(spec: str, num_threads: int = 1) -> "ConvertedSegmenter":
    """The segmenter of a ``INNER|convert=ARG`` spec (used by ``get_segmenter``)."""
    from .base import get_segmenter

    inner, arg = split_spec(spec)
    if arg is None:
        raise ValueError(f"segmenter spec {spec!r} has no {SPEC_SEP!r} part")
    config, version = parse_convert(arg)
    return ConvertedSegmenter(get_segmenter(inner, num_threads=num_threads),
                              get_converter(config, version))


class ConvertedSegmenter(Segmenter):
    """A segmenter that segments an OpenCC-converted copy of each line (see the module docstring).

    Parameters
    ----------
    segmenter : Segmenter
        The segmenter to run on the converted text (LTP, jieba, ...; not ``pre``, whose words
        are given by the text itself).
    convert : str or OpenCCConverter
        An OpenCC config name (``t2s``, ``tw2s``, ``hk2s``, ...).

    Attributes
    ----------
    spec : str
        ``<segmenter spec>|convert=opencc:CONFIG@VERSION``.
    n_convert_fallback : int
        Lines so far whose conversion could not be mapped back: segmented unconverted.
    n_convert_realigned : int
        Lines so far that needed the alignment (their conversion changed their length, or the
        config may change phrase lengths and the line has such a phrase).
    """

    def __init__(self, segmenter: Segmenter, convert):
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a wwm_fast Segmenter, got "
                            f"{type(segmenter).__name__}")
        if isinstance(segmenter, ConvertedSegmenter):
            raise ValueError(f"segmenter {segmenter.spec!r} already converts its input; "
                             f"give the convert option once")
        if segmenter.kind == "pre":
            raise ValueError("convert does not apply to a pre-segmented input ('pre:DELIM'): "
                             "its words are given by the text itself")
        converter = convert if isinstance(convert, OpenCCConverter) else get_converter(convert)
        super().__init__(segmenter.spec + SPEC_SEP + converter.spec, segmenter.num_threads)
        self.kind = segmenter.kind
        self.segmenter = segmenter
        self.converter = converter
        self.n_convert_fallback = 0
        self.n_convert_realigned = 0

    def _segment(self, lines):  # pragma: no cover - segment_batch is overridden
        raise NotImplementedError("ConvertedSegmenter works through segment_batch")

    def close(self) -> None:
        self.segmenter.close()

    def segment_batch(self, lines: Sequence[str], *, source: Optional[str] = None,
                      line_offset: int = 0) -> WordSpans:
        lines = _check_lines(lines)
        if not lines:
            return empty_spans(0)
        inner = self.segmenter
        conv = self.converter
        converted = conv.convert_lines(lines)
        before = inner.n_unmatched
        words = inner.segment_batch(converted, source=source, line_offset=line_offset)
        n = len(lines)
        len_o = np.fromiter(map(len, lines), dtype=np.int64, count=n)
        len_c = np.fromiter(map(len, converted), dtype=np.int64, count=n)
        same = len_o == len_c
        check = np.flatnonzero(~same).tolist()  # lines to align
        if conv.may_change_length:
            # a phrase may have changed length inside a line of unchanged length: align every
            # line whose conversion is not its character-by-character conversion
            per_char = conv.translate_chars("\n".join(lines)).split("\n")
            check = sorted(set(check) | {i for i in np.flatnonzero(same).tolist()
                                         if per_char[i] != converted[i]})
        # same-length lines map character by character: whitespace must sit at the same places
        bad_ws = _whitespace_mismatch(lines, converted, same)
        fixed: Dict[int, List[str]] = {}
        fallback: List[int] = []
        for i in check:
            pieces = _map_line(lines[i], converted[i], words, i,
                               conv.alignment(lines[i], converted[i]))
            self.n_convert_realigned += 1
            if pieces is None:
                fallback.append(i)
            else:
                fixed[i] = pieces
        fallback = sorted(set(fallback) | (set(bad_ws) - set(fixed)))
        replaced: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        if fixed:
            rows = sorted(fixed)
            spans, _ = spans_from_pieces([lines[i] for i in rows], [fixed[i] for i in rows])
            replaced.update(_rows(spans, rows))
        if fallback:
            self.n_convert_fallback += len(fallback)
            # the unconverted lines, segmented as they are
            spans = inner.segment_batch([lines[i] for i in fallback], source=source,
                                        line_offset=line_offset)
            replaced.update(_rows(spans, fallback))
        self.n_unmatched += inner.n_unmatched - before
        return _replace_rows(words, replaced) if replaced else words


def _whitespace_mismatch(lines: List[str], converted: List[str], same: np.ndarray) -> List[int]:
    """Same-length lines where the converted line has whitespace at other places."""
    rows = np.flatnonzero(same)
    if not len(rows):
        return []
    if len(rows) == len(lines):
        a, b = "".join(lines), "".join(converted)
    else:
        a = "".join(lines[i] for i in rows)
        b = "".join(converted[i] for i in rows)
    if a == b:
        return []
    diff = np.flatnonzero(_is_ws(a) != _is_ws(b))
    if not len(diff):
        return []
    lens = np.fromiter((len(lines[i]) for i in rows), dtype=np.int64, count=len(rows))
    ends = np.cumsum(lens)
    return sorted(set(rows[np.searchsorted(ends, diff, side="right")].tolist()))


def _map_line(line: str, converted: str, words: WordSpans, row: int,
              points: List[Tuple[int, int]]) -> Optional[List[str]]:
    """Pieces of ``line`` from the words of ``converted`` (row ``row`` of ``words``) through the
    alignment ``points``; None when a character-by-character block disagrees on whitespace."""
    a, b = int(words.row_splits[row]), int(words.row_splits[row + 1])
    word_of = [-1] * len(converted)
    for k, (s, e) in enumerate(zip(words.starts[a:b].tolist(), words.ends[a:b].tolist())):
        word_of[s:e] = [k] * (e - s)
    ids = [-1] * len(line)
    fresh = b - a  # ids for original characters with no converted word
    for (oa, ca), (ob, cb) in zip(points, points[1:]):
        if ob - oa == cb - ca:
            for t in range(ob - oa):
                if line[oa + t].isspace() != converted[ca + t].isspace():
                    return None
                ids[oa + t] = word_of[ca + t]
        elif ob > oa:
            # an n:m block (a phrase that changed length): whole, in its first word
            k = next((w for w in word_of[ca:cb] if w >= 0), -1)
            if k < 0:
                k, fresh = fresh, fresh + 1
            ids[oa:ob] = [k] * (ob - oa)
    pieces = []
    start = 0
    for i in range(1, len(line)):
        if ids[i] != ids[i - 1]:
            pieces.append(line[start:i])
            start = i
    if line:
        pieces.append(line[start:])
    return pieces


def _rows(spans: WordSpans, rows: List[int]) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    rs = spans.row_splits
    return {r: (spans.starts[rs[k]:rs[k + 1]], spans.ends[rs[k]:rs[k + 1]])
            for k, r in enumerate(rows)}


def _replace_rows(words: WordSpans, rows: Dict[int, Tuple[np.ndarray, np.ndarray]]) -> WordSpans:
    """``words`` with the given rows replaced by other spans."""
    rs = words.row_splits
    n = len(rs) - 1
    starts, ends = [], []
    counts = np.diff(rs).astype(np.int64)
    prev = 0  # first line not yet copied
    for r in sorted(rows):
        starts.append(words.starts[rs[prev]:rs[r]])
        ends.append(words.ends[rs[prev]:rs[r]])
        s, e = rows[r]
        starts.append(s)
        ends.append(e)
        counts[r] = len(s)
        prev = r + 1
    starts.append(words.starts[rs[prev]:rs[n]])
    ends.append(words.ends[rs[prev]:rs[n]])
    row_splits = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=row_splits[1:])
    return WordSpans(np.concatenate(starts).astype(np.int32, copy=False),
                     np.concatenate(ends).astype(np.int32, copy=False), row_splits)
