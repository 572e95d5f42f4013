"""The `segment` stage through a converted view of the text (``wwm-fast segment --convert t2s``).

LTP's models and the People's Daily gold are in simplified script; a segmenter trained on them cuts
traditional text worse. ``ConvertedSegmenter`` wraps any segmenter: it converts each line with
OpenCC (``t2s``, ``tw2s``, ``hk2s``, ... any config of the installed ``opencc`` package), segments
the converted copy, and maps the word boundaries back onto the *original* line. The spans point
into the original text, so everything downstream (tokens, ids, records) is what it would be
without conversion; only where the words begin and end changes.

>>> seg = ConvertedSegmenter(get_segmenter("ltp:cws.bin"), "t2s")    # doctest: +SKIP
>>> seg.segment("們說這個軟體很好")                                   # doctest: +SKIP
['們', '說', '這個', '軟體', '很', '好']

The conversion. By default a native converter (``wwm_fast._chinese_convert``, C++) does it: it
reads the installed ``opencc`` package's own config and ``.ocd2`` dictionaries (``read_ocd2``, with
PyPI ``marisa-trie``) and runs them with OpenCC's semantics (normalization, the optional
max-match segmentation, the conversion chain; dictionary groups ``short_circuit`` and ``union``;
ideographic description sequences left as they are), so its output is OpenCC's, character for
character (tests/test_convert.py checks it against the package on whole corpora, every code point
and adversarial lines; ``NATIVE_OPENCC_VERSIONS`` lists the OpenCC versions checked), ~3.5x
faster with Python strings in and out, ~6x on the native LTP kernel's path (UTF-8 straight from
the converter to the kernel). It also says, per line, exactly where a dictionary match changed the length (blocks), so
those lines need no alignment. The ``opencc`` package converts instead when the native converter
cannot (``OpenCCConverter.native_reason`` says why: another OpenCC version, a config feature it
does not run, a dictionary file it cannot read, ``marisa-trie`` missing, or
``WWM_FAST_OPENCC_NATIVE=0``), and for the lines the native converter leaves to it (U+0000 under
a config with segmentation, where OpenCC truncates). The output is the same either way, and so is
the spec: caches stay valid.

Mapping back. Most OpenCC configs replace every phrase by a phrase of the same length (all the
dictionaries of ``t2s``, ``tw2s``, ``hk2s``, ``s2t``, ...: ``LENGTH_PRESERVING_DICTS``), so a
converted line lines up character by character and its spans are the original's. The
regional-phrase configs (``tw2sp``, ``hk2sp``, ``s2twp``, ``s2hkp``) can change a line's length
(``資料來源`` -> ``数据源``, ``埠`` -> ``端口``). With the native converter such a line maps through
its blocks: outside them position by position, a block whose lengths differ goes whole into the
word of its first converted character. Without it (the ``opencc`` package), such lines, and any
line whose length changed, are aligned (``OpenCCConverter.alignment``): where the line and its
character-by-character
conversion agree, positions correspond one to one; each run of differences is widened to places
where OpenCC's conversion splits (checked by converting both sides), so a phrase converted as a
whole is one block. A block of equal lengths maps position by position; a block whose lengths
differ goes whole into the word of its first converted character (a boundary inside it has no
counterpart). Every non-whitespace character of the original still belongs to exactly one word.

A line whose conversion cannot be lined up with it (whitespace where the original has none or the
reverse, in a block that maps character by character; OpenCC never does this, but a dictionary
could), or that OpenCC cannot convert at all (a lone surrogate, which has no UTF-8 form), is
segmented unconverted instead and counted in ``n_convert_fallback`` (``wwm-fast segment``
reports it). ``n_convert_realigned`` counts the lines mapped back through a length change (native
blocks, or the alignment): 0 for ``t2s``, whose dictionaries keep every phrase's length.

The spec of a converted segmenter is the inner spec plus ``|convert=opencc:CONFIG@VERSION``
(``ltp-legacy:/m/cws.bin#3c218c9571f9|convert=opencc:t2s@1.4.2``): segmentation caches record it,
so caches made with and without conversion (or with another OpenCC version) are never mixed up,
and ``get_segmenter(spec)`` rebuilds the same converted segmenter (``SPEC|convert=t2s`` is
accepted wherever a segmenter spec is: ``create --segmenter`` on text, ``refs``). Parsing such a
spec is the registry's (``registry._converted``): this module is a segmenter like the kinds, it
imports ``base`` and never the registry.
"""

from __future__ import annotations

import json
import os
import re
import struct
from bisect import bisect_left, bisect_right
from difflib import SequenceMatcher
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..alignment import WordSpans
from ._spans import _WS_TABLE, empty_spans, spans_from_pieces
from .base import Segmenter, _check_lines

__all__ = ["ConvertedSegmenter", "OpenCCConverter", "get_converter", "opencc_configs",
           "read_ocd2", "DictionaryError", "SPEC_SEP", "OPENCC_EXTRA", "NATIVE_OPENCC_VERSIONS"]

SPEC_SEP = "|convert="
_MAX_WIDEN = 32  # characters a run of differences is widened by, at most, to find a split
OPENCC_EXTRA = "opencc"  # pip install 'wwm-fast[opencc]'

# Versions of the PyPI package ``opencc`` whose conversion the native converter reproduces: the
# semantics were read from OpenCC's source and tests/test_convert.py checks the output against
# the installed package on whole corpora and every code point. Another version converts with the
# package itself (``native_reason`` says so) until it is checked the same way.
NATIVE_OPENCC_VERSIONS = frozenset({"1.4.2"})
NATIVE_ENV = "WWM_FAST_OPENCC_NATIVE"  # "0": always convert with the opencc package
OCD2_HEADER = b"OPENCC_MARISA_0.2.5"
_IDS_OPERATOR = re.compile("[\u2ff0-\u2fff]")  # ideographic description operators

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


def _read_config(path: str):
    """An OpenCC config file's JSON; OSError or ValueError when it cannot be read as JSON."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _config_dicts(config) -> List[str]:
    """Dictionary names (file names without extension) an OpenCC config's JSON uses."""
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


class DictionaryError(ValueError):
    """An OpenCC dictionary file that cannot be read (truncated, corrupt); names the file."""


class _Unsupported(Exception):
    """A config the native converter does not run (the reason is the message)."""


def read_ocd2(path: str) -> Tuple[List[str], List[str]]:
    """Keys and values of an OpenCC ``.ocd2`` dictionary, by key id; a key's value is its first.

    Layout (OpenCC's MarisaDict and SerializedValues): the header ``OPENCC_MARISA_0.2.5``; a
    marisa trie (its key ids number the entries); then little-endian ``uint32`` entry count,
    ``uint32`` byte length of the value buffer, the buffer (NUL-terminated UTF-8 values, entry by
    entry), and per entry a ``uint16`` value count followed by one ``uint16`` byte length
    (NUL included) per value. Raises ``DictionaryError`` naming the file for anything else.
    """
    try:
        import marisa_trie
    except ImportError:
        raise _Unsupported(f"the package marisa-trie is not installed (pip install "
                           f"'wwm-fast[{OPENCC_EXTRA}]')") from None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DictionaryError(f"cannot read the OpenCC dictionary {path}: {e}") from None

    def bad(what: str) -> DictionaryError:
        return DictionaryError(f"invalid OpenCC dictionary {path}: {what}")

    if not data.startswith(OCD2_HEADER):
        raise bad(f"it does not start with {OCD2_HEADER.decode()}")
    body = data[len(OCD2_HEADER):]
    trie = marisa_trie.Trie()
    try:
        trie.frombytes(body)
        trie_size = len(trie.tobytes())
        items = trie.items()
    except Exception as e:  # marisa raises its own error types for a corrupt trie
        raise bad(f"its marisa trie cannot be read ({type(e).__name__}: {e})") from None
    n = len(items)
    if trie_size > len(body) - 8:
        raise bad("it ends inside its marisa trie or before its value table")
    n_items, n_bytes = struct.unpack_from("<II", body, trie_size)
    if n_items != n:
        raise bad(f"{n_items} entries for {n} keys")
    buf_start = trie_size + 8
    if n_bytes > len(body) - buf_start:
        raise bad("the value buffer runs past the end of the file")
    buf = body[buf_start:buf_start + n_bytes]
    off, pos = buf_start + n_bytes, 0
    values: List[str] = []
    try:
        for i in range(n):
            (k,) = struct.unpack_from("<H", body, off)
            lens = struct.unpack_from(f"<{k}H", body, off + 2)
            off += 2 + 2 * k
            if k == 0:
                raise bad(f"entry {i} has no value")
            first = None
            for m in lens:
                if m == 0 or pos + m > n_bytes or buf[pos + m - 1] != 0:
                    raise bad(f"entry {i}: a value runs out of the value buffer or is not "
                              f"NUL-terminated")
                if first is None:
                    first = buf[pos:pos + m - 1].decode("utf-8")
                pos += m
            values.append(first)
    except struct.error:
        raise bad("it ends inside its value table") from None
    except UnicodeDecodeError:
        raise bad("a value is not UTF-8") from None
    if off != len(body) or pos != n_bytes:
        raise bad(f"{len(body) - off} bytes after the value table")
    keys = [""] * n
    seen = bytearray(n)
    for key, i in items:
        if not 0 <= i < n or seen[i]:
            raise bad("its key ids are not 0..n-1")
        seen[i] = 1
        keys[i] = key
    return keys, values


def _flat(strings: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Strings as (uint32 code points, int64 offsets)."""
    cps = np.frombuffer("".join(strings).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)),
              out=offsets[1:])
    return np.ascontiguousarray(cps, dtype=np.uint32), offsets


_DICT_ARRAYS: Dict[Tuple[str, int, int], tuple] = {}  # (path, mtime_ns, size) -> arrays


def _dict_arrays(path: str) -> tuple:
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    arrays = _DICT_ARRAYS.get(key)
    if arrays is None:
        keys, values = read_ocd2(path)
        if any(not k for k in keys):
            raise _Unsupported(f"{os.path.basename(path)} has an empty key")
        arrays = _DICT_ARRAYS[key] = _flat(keys) + _flat(values)
    return arrays


def _native_program(config_path: str, config) -> Tuple[List[str], List[int]]:
    """The dictionary files and the program (``csrc/chinese_convert.h``) of the OpenCC config
    at ``config_path`` whose JSON is ``config``; ``_Unsupported`` for anything the native
    converter does not run."""
    folder = os.path.dirname(config_path)
    files: List[str] = []

    def tree(node, where: str) -> List[int]:
        if not isinstance(node, dict):
            raise _Unsupported(f"{where} is not a dictionary object")
        kind = node.get("type")
        if kind == "ocd2":
            name = node.get("file")
            path = os.path.join(folder, name) if isinstance(name, str) else None
            if path is None or not os.path.isfile(path):
                raise _Unsupported(f"{where}: dictionary file {name!r} not found next to the "
                                   f"config")
            if path not in files:
                files.append(path)
            return [0, files.index(path)]
        if kind == "group":
            policy = node.get("match_policy", "short_circuit")
            children = node.get("dicts")
            if policy not in ("short_circuit", "union"):
                raise _Unsupported(f"{where}: match_policy {policy!r}")
            if not isinstance(children, list) or not children:
                raise _Unsupported(f"{where}: a group without dictionaries")
            out = [1 if policy == "short_circuit" else 2, len(children)]
            for i, child in enumerate(children):
                out += tree(child, f"{where}.dicts[{i}]")
            return out
        raise _Unsupported(f"{where}: dictionary type {kind!r} (the native converter reads "
                           f"ocd2 files and groups)")

    def stages(name: str) -> List[List[int]]:
        items = config.get(name, [])
        if not isinstance(items, list):
            raise _Unsupported(f"{name} is not a list")
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "dict" not in item:
                raise _Unsupported(f"{name}[{i}] has no dict")
            out.append(tree(item["dict"], f"{name}[{i}].dict"))
        return out

    if not isinstance(config, dict) or "conversion_chain" not in config:
        raise _Unsupported("no conversion_chain")
    norm = stages("normalization")
    seg: List[int] = []
    if "segmentation" in config:
        s = config["segmentation"]
        if not isinstance(s, dict) or s.get("type") != "mmseg" or "dict" not in s:
            raise _Unsupported("segmentation other than mmseg")
        seg = tree(s["dict"], "segmentation.dict")
    chain = stages("conversion_chain")
    program = [len(norm), 1 if seg else 0, len(chain)]
    for t in norm + ([seg] if seg else []) + chain:
        program += t
    return files, program


_NATIVE: Dict[tuple, object] = {}  # (config, program, dictionary files' stats) -> converter


def _native_converter(config_path: str, config=None):
    """The native converter of an OpenCC config file (one per process; ``config``: its JSON if
    already read); ``_Unsupported`` or ``DictionaryError`` when it cannot be built."""
    if config is None:
        try:
            config = _read_config(config_path)
        except (OSError, ValueError) as e:
            raise _Unsupported(f"cannot read {config_path} as plain JSON ({e})") from None
    files, program = _native_program(config_path, config)
    stats = [os.stat(p) for p in files]
    key = (config_path, tuple(program), tuple((p, st.st_mtime_ns, st.st_size)
                                              for p, st in zip(files, stats)))
    conv = _NATIVE.get(key)
    if conv is None:
        try:
            from .. import _chinese_convert
        except ImportError as e:
            raise _Unsupported(f"the extension wwm_fast._chinese_convert is not built ({e})") \
                from None
        dicts = [_dict_arrays(p) for p in files]
        conv = _NATIVE[key] = _chinese_convert.Converter(
            dicts, np.asarray(program, dtype=np.int32))
    return conv


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
    native : bool
        True when lines are converted by the native converter (``wwm_fast._chinese_convert``,
        OpenCC's dictionaries and semantics, the same output, several times faster); False when
        by the ``opencc`` package.
    native_reason : str or None
        Why the native converter is not used (an OpenCC version it was not checked against, a
        config feature it does not run, an unreadable dictionary file, ``WWM_FAST_OPENCC_NATIVE=0``
        or ``native=False``); None when it is.
    """

    def __init__(self, config: str, version: Optional[str] = None,
                 native: Optional[bool] = None):
        if not isinstance(config, str):
            raise TypeError(f"convert must be an OpenCC config name (str), got "
                            f"{type(config).__name__}")
        opencc = _import_opencc()
        name = config.strip().lower()
        if name.startswith("opencc:"):
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
        config = config_error = None  # the config's JSON, read once for both uses
        if path:
            try:
                config = _read_config(path)
            except (OSError, ValueError) as e:
                config_error = e
        dicts = _config_dicts(config) if path and config_error is None else None
        self.dictionaries = tuple(dicts) if dicts is not None else None
        self.may_change_length = dicts is None or not set(dicts) <= LENGTH_PRESERVING_DICTS
        self._chars: Dict[int, str] = {}  # code point -> its conversion alone
        self._codes: Optional[np.ndarray] = None  # the same as code points (char_codes)
        self._native = None
        self.native_reason: Optional[str] = None
        if native is False:
            self.native_reason = "native=False"
        elif native is None and os.environ.get(NATIVE_ENV, "1") == "0":
            self.native_reason = f"{NATIVE_ENV}=0"
        elif installed not in NATIVE_OPENCC_VERSIONS:
            self.native_reason = (f"the native converter is checked against OpenCC "
                                  f"{', '.join(sorted(NATIVE_OPENCC_VERSIONS))}, not {installed}")
        elif not path or not os.path.isfile(path):
            self.native_reason = f"the config file of {name!r} was not found"
        elif config_error is not None:
            self.native_reason = f"cannot read {path} as plain JSON ({config_error})"
        else:
            try:
                self._native = _native_converter(path, config)
            except (_Unsupported, DictionaryError) as e:
                self.native_reason = str(e)
        if native and self._native is None:
            raise ValueError(f"the native converter cannot run OpenCC {name!r}: "
                             f"{self.native_reason}")
        self.native = self._native is not None

    def __repr__(self) -> str:
        return f"OpenCCConverter({self.spec!r})"

    def convert(self, text: str) -> str:
        """OpenCC's conversion of ``text``."""
        return self._cc.convert(text)

    def convert_lines(self, lines: Sequence[str]) -> Tuple[List[str], List[int]]:
        """Each line converted as OpenCC converts it alone, and the indices of the lines OpenCC
        cannot convert (a lone surrogate, which has no UTF-8 form: only possible from Python),
        left as they are."""
        if self._native is not None:
            out, status, _ = self.convert_mapped(lines)
            return out, np.flatnonzero(status == _LINE_FAILED).tolist()
        return self._convert_lines_opencc(lines)

    def convert_mapped(self, lines: Sequence[str]) -> Tuple[List[str], np.ndarray, np.ndarray]:
        """The native converter (``native`` must be True): each line converted, a status per
        line (uint8: 0 converted natively; 1 a lone surrogate: left as it is; 2 converted by the
        ``opencc`` package: U+0000 under a config with segmentation, which OpenCC truncates at;
        3 converted natively, but a character turned into whitespace or out of it), and the
        blocks of the natively converted lines where the conversion does not follow the line
        character by character: int64 rows (line, start, end, converted start, converted end);
        outside them position i of a line is position i + shift of its conversion."""
        if self._native is None:
            raise ValueError(f"{self.spec}: no native converter ({self.native_reason})")
        return _run_native(self._native, lines, self._cc.convert)

    def _convert_utf8(self, lines: List[str]):
        """The native conversion straight to UTF-8 (for a segmenter that reads UTF-8): (the
        converted lines concatenated, their code point offsets, their byte offsets, blocks,
        status); None when a line holds a line break, a lone surrogate, or U+0000 under a config
        with segmentation (``convert_mapped`` handles those)."""
        n = len(lines)
        cps = _joined_code_points(lines)
        try:
            data, offsets, byte_offsets, blocks, status = self._native.convert_utf8(
                cps, n, 10, _WS_U8)
        except ValueError:  # a line holds a line break
            return None
        if status.any() and np.any((status == _LINE_FAILED) | (status == _LINE_REFERENCE)):
            return None
        return data, offsets, byte_offsets, blocks.reshape(-1, 5), status

    def _convert_lines_opencc(self, lines: Sequence[str]) -> Tuple[List[str], List[int]]:
        """``convert_lines`` with the opencc package: one call for the whole batch (no OpenCC
        phrase contains a line break) unless a line holds an ideographic description operator
        (an IDS may run over a line break) or a line cannot be encoded."""
        if not lines:
            return [], []
        try:
            joined = "\n".join(lines)
        except TypeError:
            _check_lines(lines)  # raises the TypeError that names the problem
            raise
        if not _IDS_OPERATOR.search(joined):
            try:
                out = self.convert(joined).split("\n")
                if len(out) == len(lines):
                    return out, []
            except UnicodeEncodeError:
                pass
        out, failed = [], []  # line by line
        for i, x in enumerate(lines):
            try:
                out.append(self.convert(x))
            except UnicodeEncodeError:
                out.append(x)
                failed.append(i)
        return out, failed

    def convert_chars(self, line: str) -> List[str]:
        """The conversion of each character of ``line`` taken alone (cached per code point)."""
        table = self._chars
        missing = sorted({c for c in line if ord(c) not in table})
        if missing:
            joined = "\n".join(missing)
            conv = [] if _IDS_OPERATOR.search(joined) else self.convert(joined).split("\n")
            if len(conv) != len(missing):
                conv = [self.convert(c) for c in missing]
            for c, v in zip(missing, conv):
                table[ord(c)] = v
        return [table[ord(c)] for c in line]

    def char_codes(self, cps: np.ndarray) -> np.ndarray:
        """For code points ``cps``: the code point of each one's conversion taken alone, -1 where
        that conversion is not one character."""
        if self._codes is None:
            self._codes = np.full(0x110000, -2, dtype=np.int32)  # -2: not looked up yet
        out = self._codes[cps]
        unknown = out == -2
        if unknown.any():
            new = np.unique(cps[unknown])
            conv = self.convert_chars("".join(map(chr, new.tolist())))
            self._codes[new] = [ord(v) if len(v) == 1 else -1 for v in conv]
            out = self._codes[cps]
        return out

    def alignment(self, line: str, converted: str) -> List[Tuple[int, int]]:
        """Points ``(i, j)``: original position ``i`` corresponds to converted position ``j``.

        Starts with ``(0, 0)``, ends with ``(len(line), len(converted))``, increasing. Between
        two points lies a block: a block of equal lengths maps position by position, a block of
        different lengths is a phrase that OpenCC converted as a whole.

        The line is compared with its character-by-character conversion (each character converted
        alone; ``difflib.SequenceMatcher``): where the two agree, positions correspond one to one.
        Each run of differences is widened until both its ends are places where OpenCC's
        conversion splits -- ``converted`` is the conversion of ``line[:i]`` followed by that of
        ``line[i:]``, checked by converting both sides -- so that a phrase converted as a whole
        (``資料來源`` -> ``数据源``, ``滑鼠`` -> ``鼠标``, where a character matches at another
        place) is one block.
        """
        pieces = self.convert_chars(line)
        per_char = "".join(pieces)
        n, m = len(line), len(converted)
        opcodes = SequenceMatcher(None, per_char, converted, autojunk=False).get_opcodes()
        if n == m and all(i2 - i1 == j2 - j1 for _, i1, i2, j1, j2 in opcodes):
            return [(0, 0), (n, m)]  # only same-length replacements: position by position
        starts = [0]  # per_char position of each original boundary
        for p in pieces:
            starts.append(starts[-1] + len(p))
        sync: Dict[int, int] = {}  # original boundary in equal text -> its converted position
        regions = []  # runs of differences: (start, end) per_char positions
        for tag, i1, i2, j1, _j2 in opcodes:
            if tag == "equal":
                for i in range(bisect_left(starts, i1), bisect_right(starts, i2)):
                    sync.setdefault(i, j1 + starts[i] - i1)
            elif regions and regions[-1][1] == i1:
                regions[-1] = (regions[-1][0], i2)
            else:
                regions.append((i1, i2))

        def split(a: int, ja: int, i: int) -> Optional[int]:
            """j when the conversion splits at i (given that it splits at a, ja), else None."""
            head = self.convert(line[a:i])
            j = ja + len(head)
            if converted[ja:j] == head and self.convert(line[i:]) == converted[j:]:
                return j
            return None

        cuts = {0: 0, n: m}  # the ends of the widened runs of differences
        blocks = []  # (lo, hi): original positions strictly inside hold no point
        a, ja = 0, 0
        for x1, x2 in regions:
            lo = bisect_right(starts, x1) - 1  # widen to the left...
            j = None
            while lo > a and lo > x1 - _MAX_WIDEN and (j := split(a, ja, lo)) is None:
                lo -= 1
            if lo > a and j is not None:
                cuts[lo] = j
                a, ja = lo, j
            lo = a if lo <= a else lo
            hi = max(bisect_left(starts, x2), a + 1)  # ... and to the right
            j = None
            while hi < n and hi < x2 + _MAX_WIDEN and (j := split(a, ja, hi)) is None:
                hi += 1
            if hi >= n or j is None:  # no split nearby: the rest of the line is one block
                blocks.append((lo, n))
                break
            cuts[hi] = j
            blocks.append((lo, hi))
            a, ja = hi, j
        points = dict(cuts)
        for i, j in sync.items():
            if i not in points and not any(lo < i < hi for lo, hi in blocks):
                points[i] = j
        return sorted(points.items())


_CONVERTERS: Dict[Tuple[str, Optional[str], str], OpenCCConverter] = {}
# _chinese_convert.LINE_FAILED, LINE_REFERENCE, LINE_WHITESPACE
_LINE_FAILED, _LINE_REFERENCE, _LINE_WHITESPACE = 1, 2, 3
_WS_U8 = _WS_TABLE.view(np.uint8)  # whitespace per code point (beyond it: none)


def get_converter(config: str, version: Optional[str] = None) -> OpenCCConverter:
    """An ``OpenCCConverter``, one per config and process (a config loads in ~10 ms with the
    opencc package, ~50-300 ms more the first time for the native converter's dictionaries)."""
    key = (config, version, os.environ.get(NATIVE_ENV, "1"))
    conv = _CONVERTERS.get(key)
    if conv is None:
        conv = _CONVERTERS[key] = OpenCCConverter(config, version)
    return conv


def _joined_code_points(lines: Sequence[str]) -> np.ndarray:
    """The lines joined by line breaks, as uint32 code points (lone surrogates kept)."""
    try:
        joined = "\n".join(lines)
    except TypeError:
        _check_lines(lines)  # raises the TypeError that names the problem
        raise
    return np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _run_native(native, lines: Sequence[str], reference) -> Tuple[List[str], np.ndarray,
                                                                  np.ndarray]:
    """``OpenCCConverter.convert_mapped`` with a native converter; ``reference`` (OpenCC's
    convert) converts the lines the native converter leaves to it."""
    n = len(lines)
    if not n:
        return [], np.zeros(0, np.uint8), np.zeros((0, 5), np.int64)
    cps = _joined_code_points(lines)
    try:  # the lines cut at their line breaks, natively
        text, ends, blocks, status = native.convert_joined(cps, n, 10, _WS_U8)
        split = True
    except ValueError:  # a line holds a line break: by offsets
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=n), out=offsets[1:])
        cps = np.frombuffer("".join(lines).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        text, ends, blocks, status = native.convert(cps, offsets, 10, _WS_U8)
        split = False
    out = text.tobytes().decode("utf-32-le", "surrogatepass")
    if split:
        out_lines = out.split("\n")
    else:
        starts = (ends[:-1] + (np.arange(n) > 0)).tolist()
        out_lines = [out[a:b] for a, b in zip(starts, ends[1:].tolist())]
    for i in np.flatnonzero(status == _LINE_REFERENCE).tolist():
        out_lines[i] = reference(lines[i])
    return out_lines, status, blocks.reshape(-1, 5)


def parse_convert(arg: str) -> Tuple[str, Optional[str]]:
    """``t2s`` / ``opencc:t2s`` / ``opencc:t2s@1.4.2`` -> (config, version or None)."""
    arg = arg.strip()
    version = None
    if "@" in arg:
        arg, version = arg.rsplit("@", 1)
    return arg, version


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
        Lines so far mapped back through a change of length: with the native converter, lines
        where a dictionary match changed the length (its blocks say where), and the lines it
        leaves to the opencc package (U+0000 under a config with segmentation); with the opencc
        package, lines that needed the alignment (their conversion changed their length, or the
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
        # items are checked by convert_lines' join (a separate _check_lines pass costs ~3% of
        # a converted segmentation)
        lines = lines if type(lines) is list else _check_lines(lines)
        if not lines:
            return empty_spans(0)
        if self.converter.native:
            return self._segment_native(lines, source, line_offset)
        inner = self.segmenter
        conv = self.converter
        converted, failed = conv.convert_lines(lines)
        before = inner.n_unmatched
        words = inner.segment_batch(converted, source=source, line_offset=line_offset)
        # lines OpenCC could not convert were segmented as they are: they are the fallback
        fallback = set(failed)
        n = len(lines)
        len_o = np.fromiter(map(len, lines), dtype=np.int64, count=n)
        len_c = np.fromiter(map(len, converted), dtype=np.int64, count=n)
        same = len_o == len_c
        same[failed] = False
        check = set(np.flatnonzero(len_o != len_c).tolist())  # lines to align
        # Same-length lines map position by position when whitespace sits at the same places
        # (OpenCC never moves it) and, for a config whose phrases may change length, when each
        # character is converted as it is alone (else a phrase may have changed length inside a
        # line of unchanged length: align the line).
        bad_ws, differs = _same_length_checks(lines, converted, np.flatnonzero(same), len_o,
                                              conv if conv.may_change_length else None)
        check.update(differs)
        fallback.update(set(bad_ws) - check)
        fixed: Dict[int, List[str]] = {}
        for i in sorted(check):
            self._remap(lines, converted, words, i, conv.alignment(lines[i], converted[i]),
                        fixed, fallback)
        self.n_convert_fallback += len(fallback)
        return self._finish(lines, words, fixed, sorted(fallback - set(failed)), before,
                            source, line_offset)

    def _remap(self, lines, converted, words: WordSpans, i: int,
               points: List[Tuple[int, int]], fixed: Dict[int, List[str]], fallback: set) -> None:
        """Line ``i``'s words mapped back through ``points`` into ``fixed``, or the line into
        ``fallback`` when that cannot be done (``_map_line``); counted as realigned."""
        self.n_convert_realigned += 1
        pieces = _map_line(lines[i], converted[i], words, i, points)
        if pieces is None:
            fallback.add(i)
        else:
            fixed[i] = pieces

    def _segment_native(self, lines: List[str], source: Optional[str],
                        line_offset: int) -> WordSpans:
        """``segment_batch`` with the native converter: it says where each line's conversion
        changed length (blocks), so no alignment is needed except for lines converted by the
        opencc package (U+0000 under a config with segmentation). With the native LTP kernel
        the converted text goes to it as UTF-8 straight from the converter; the converted lines
        are decoded only where a block or a fallback needs them."""
        inner = self.segmenter
        conv = self.converter
        before = inner.n_unmatched
        kernel = _utf8_kernel(inner)
        fast = conv._convert_utf8(lines) if kernel is not None else None
        if fast is not None:  # converted text straight to the LTP kernel, no str in between
            data, _, byte_offsets, blocks, status = fast
            words = kernel(data, byte_offsets)
            converted = _Utf8Lines(data, byte_offsets)
        else:
            converted, status, blocks = conv.convert_mapped(lines)
            words = inner.segment_batch(converted, source=source, line_offset=line_offset)
        fallback: set = set()
        n_failed = 0
        if status.any():
            n_failed = int(np.count_nonzero(status == _LINE_FAILED))  # segmented as they are
            fallback.update(np.flatnonzero(status == _LINE_WHITESPACE).tolist())
            reference = np.flatnonzero(status == _LINE_REFERENCE).tolist()
        else:
            reference = []
        fixed: Dict[int, List[str]] = {}
        if len(blocks):
            rows = blocks[:, 0]
            cut = np.flatnonzero(np.diff(rows)) + 1
            for part in np.split(blocks, cut):
                i = int(part[0, 0])
                points = [(0, 0)]
                for _, a, b, c, d in part.tolist():
                    if (a, c) != points[-1]:
                        points.append((a, c))
                    points.append((b, d))
                end = (len(lines[i]), len(converted[i]))
                if points[-1] != end:
                    points.append(end)
                self._remap(lines, converted, words, i, points, fixed, fallback)
        for i in reference:  # converted by OpenCC itself: aligned as without the native path
            self._remap(lines, converted, words, i, conv.alignment(lines[i], converted[i]),
                        fixed, fallback)
        self.n_convert_fallback += len(fallback) + n_failed
        return self._finish(lines, words, fixed, sorted(fallback), before, source, line_offset)

    def _finish(self, lines: List[str], words: WordSpans, fixed: Dict[int, List[str]],
                redo: List[int], before: int, source: Optional[str],
                line_offset: int) -> WordSpans:
        """``words`` with the rows of ``fixed`` (pieces mapped back) and of ``redo`` (lines
        segmented unconverted, as they are) replaced; ``before``: the inner segmenter's
        ``n_unmatched`` before this batch."""
        inner = self.segmenter
        replaced: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        if fixed:
            rows = sorted(fixed)
            spans, _ = spans_from_pieces([lines[i] for i in rows], [fixed[i] for i in rows])
            replaced.update(_rows(spans, rows))
        if redo:
            spans = inner.segment_batch([lines[i] for i in redo], source=source,
                                        line_offset=line_offset)
            replaced.update(_rows(spans, redo))
        self.n_unmatched += inner.n_unmatched - before
        return _replace_rows(words, replaced) if replaced else words


def _utf8_kernel(seg: Segmenter):
    """For the native LTP segmenter: its ``segment_utf8`` (UTF-8 rows and their byte offsets,
    as the native converter writes them); None for any other segmenter."""
    from .ltp_native import LTPNativeSegmenter

    if type(seg) is not LTPNativeSegmenter:
        return None
    return seg.segment_utf8


class _Utf8Lines:
    """Lines of concatenated UTF-8 by their byte offsets, decoded when asked for."""

    def __init__(self, data: bytes, byte_offsets: np.ndarray):
        self.data, self.offsets = data, byte_offsets

    def __getitem__(self, i: int) -> str:
        return self.data[int(self.offsets[i]):int(self.offsets[i + 1])].decode("utf-8")


def _same_length_checks(lines: List[str], converted: List[str], rows: np.ndarray,
                        lengths: np.ndarray, conv: Optional[OpenCCConverter]
                        ) -> Tuple[List[int], List[int]]:
    """Among ``rows`` (lines whose conversion kept their length; ``lengths``: the length of every
    line): the lines whose converted copy has whitespace at other places, and (with ``conv``) the
    lines where a character is not converted as it is alone. Vectorised over the batch; only
    differing positions are looked at."""
    if not len(rows):
        return [], []
    if len(rows) == len(lines):
        a, b = "".join(lines), "".join(converted)
    else:
        a = "".join([lines[i] for i in rows])
        b = "".join([converted[i] for i in rows])
    if a == b:
        return [], []
    ca = np.frombuffer(a.encode("utf-32-le"), dtype="<u4")
    cb = np.frombuffer(b.encode("utf-32-le"), dtype="<u4")
    pos = np.flatnonzero(ca != cb)
    lim = len(_WS_TABLE) - 1
    ws = pos[_WS_TABLE[np.minimum(ca[pos], lim)] != _WS_TABLE[np.minimum(cb[pos], lim)]]
    ends = np.cumsum(lengths[rows])
    bad_ws = sorted(set(rows[np.searchsorted(ends, ws, side="right")].tolist()))
    differs: List[int] = []
    if conv is not None:
        alone = conv.char_codes(ca[pos])
        other = pos[alone != cb[pos].astype(np.int64)]
        differs = sorted(set(rows[np.searchsorted(ends, other, side="right")].tolist()))
    return bad_ws, differs


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
