"""WordPiece tokenization with exactly Google's semantics, in C++ (stage 1 of the data flow).

``FullTokenizer`` is a drop-in for ``bert.tokenization.FullTokenizer`` (same constructor, same
``tokenize`` / ``convert_tokens_to_ids`` / ``convert_ids_to_tokens`` / ``vocab`` / ``inv_vocab``)
plus batch entry points that return flat numpy arrays with character offsets:

>>> tok = FullTokenizer("vocab.txt")
>>> enc = tok.encode_batch(["unaffable 中国", ""])
>>> enc.ids, enc.row_splits, enc.starts, enc.ends          # doctest: +SKIP
(array([ ... ], dtype=int32), array([0, 5, 5]), array([0, 2, 5, 10, 11], dtype=int32), ...)
"""

from __future__ import annotations

import collections
import os
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from . import _check_build  # noqa: F401  (raises a helpful ImportError when unbuilt)
from . import _wordpiece
from ._threads import check_num_threads, resolve_num_threads

__all__ = ["FullTokenizer", "Encoding", "load_vocab"]

_ERRORS = ("strict", "ignore")


class Encoding(NamedTuple):
    """Token ids of a batch of lines as flat arrays.

    Line ``i`` owns tokens ``row_splits[i]:row_splits[i + 1]``. ``starts``/``ends`` are code point
    offsets into that line (start inclusive, end exclusive), so ``line[starts[j]:ends[j]]`` is the
    text token ``j`` came from. ``blank[i]`` is 1 when the line is empty after ``str.strip()``
    (Google's document boundary).
    """

    ids: np.ndarray  # int32 [n_tokens]
    row_splits: np.ndarray  # int64 [n_lines + 1]
    starts: np.ndarray  # int32 [n_tokens]
    ends: np.ndarray  # int32 [n_tokens]
    blank: np.ndarray  # uint8 [n_lines]


# Kept for the modules that still import it from here (they move to wwm_fast._threads): checks a
# thread or worker count and returns it, -1 unchanged.
_resolve_threads = check_num_threads


def _check_errors(errors: str) -> str:
    if errors not in _ERRORS:
        raise ValueError(f"errors must be one of {list(_ERRORS)}, got {errors!r}")
    return errors


def load_vocab(vocab_file: str | os.PathLike) -> "collections.OrderedDict[str, int]":
    """Google's ``load_vocab``: token -> 0-based line number.

    Lines are split on ``\\n`` only (the Chinese vocab has two entries containing U+2028, which
    ``str.splitlines`` would split), every ``\\r`` is removed (TensorFlow's GFile does), and each line
    is ``.strip()``-ed, so the U+2028 entries become the keys ``""`` and ``"##"``. A later duplicate
    key takes the later line number (google-research/bert master; PyPI bert-tensorflow 1.0.4
    instead keeps the first and renumbers, which breaks the checkpoint's embedding rows).
    """
    path = os.fspath(vocab_file)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError(f"vocab_file not found: {path!r}") from None
    except IsADirectoryError:
        raise ValueError(f"vocab_file is a directory, not a file: {path!r}") from None
    if not data:
        raise ValueError(f"vocab_file is empty: {path!r}")
    lines = data.replace(b"\r", b"").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    vocab: collections.OrderedDict[str, int] = collections.OrderedDict()
    for index, raw in enumerate(lines):
        try:
            token = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"vocab_file {path!r} line {index + 1}: invalid UTF-8 {raw[e.start:e.end]!r} "
                f"at byte {e.start}") from None
        vocab[token.strip()] = index
    return vocab


class FullTokenizer:
    """Google's ``FullTokenizer`` (BasicTokenizer + WordpieceTokenizer), native and batched.

    Parameters
    ----------
    vocab_file : path
        A BERT vocab, one token per line (e.g. ``chinese_L-12_H-768_A-12/vocab.txt``).
    do_lower_case : bool, default True
        Lower-case, NFD and strip accents, as the uncased/Chinese models were trained.
    max_input_chars_per_word : int, default 200
        Longer words become one ``[UNK]`` (Google's value; HF uses 100).
    unk_token : str, default "[UNK]"
        Must be in the vocab.
    """

    def __init__(self, vocab_file, do_lower_case: bool = True, *,
                 max_input_chars_per_word: int = 200, unk_token: str = "[UNK]"):
        if not isinstance(do_lower_case, (bool, np.bool_)):
            raise TypeError(f"do_lower_case must be a bool, got {do_lower_case!r}")
        if not isinstance(max_input_chars_per_word, int) or max_input_chars_per_word < 1:
            raise ValueError(
                f"max_input_chars_per_word must be an int >= 1, got {max_input_chars_per_word!r}")
        self.vocab_file = os.fspath(vocab_file)
        self.vocab = load_vocab(vocab_file)
        if unk_token not in self.vocab:
            raise ValueError(
                f"vocab_file {self.vocab_file!r} has no {unk_token!r} entry "
                f"({len(self.vocab)} entries); is it a BERT vocab?")
        self.inv_vocab = {v: k for k, v in self.vocab.items()}
        self.do_lower_case = bool(do_lower_case)
        self.unk_token = unk_token
        self.unk_id = self.vocab[unk_token]
        self.max_input_chars_per_word = max_input_chars_per_word
        keys = list(self.vocab.keys())
        ids = np.fromiter(self.vocab.values(), dtype=np.int32, count=len(keys))
        self._native = _wordpiece.FullTokenizer(
            keys, ids, self.unk_id, self.do_lower_case, max_input_chars_per_word)
        # id -> token string starts with "##" (Google's whole-word grouping test)
        size = max(self.vocab.values()) + 1
        self._suffix = np.zeros(size, dtype=np.uint8)
        for token, index in self.vocab.items():
            if token.startswith("##"):
                self._suffix[index] = 1

    # -- Google's API -----------------------------------------------------------------------------
    def tokenize(self, text) -> list:
        """Tokens of one text, as ``bert.tokenization.FullTokenizer.tokenize`` returns them."""
        ids = self.encode(text).ids
        inv = self.inv_vocab
        return [inv[i] for i in ids.tolist()]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list:
        return [self.vocab[t] for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list:
        return [self.inv_vocab[int(i)] for i in ids]

    # -- batch API ----------------------------------------------------------------------------------
    def encode(self, text, *, errors: str = "ignore") -> Encoding:
        """One line of text (str, or bytes decoded per ``errors``)."""
        return self.encode_batch([text], num_threads=1, errors=errors)

    def encode_batch(self, lines: Sequence, *, num_threads: int = -1,
                     errors: str = "ignore") -> Encoding:
        """Tokenize many lines at once; the GIL is released and lines are split over threads.

        ``lines`` is a list of str, or a list of bytes decoded as UTF-8 with ``errors``
        ("ignore", Google's ``convert_to_unicode``, drops invalid bytes; "strict" raises
        ValueError naming the line). ``num_threads=-1`` uses every core; output is identical for
        any thread count.
        """
        num_threads = resolve_num_threads(num_threads)
        _check_errors(errors)
        if isinstance(lines, (str, bytes)):
            raise TypeError("lines must be a sequence of lines, not a single str/bytes; "
                            "use encode() for one line")
        lines = list(lines)
        if lines and all(isinstance(x, (bytes, bytearray, memoryview)) for x in lines):
            buf = b"".join(lines)
            splits = np.zeros(len(lines) + 1, dtype=np.int64)
            np.cumsum([len(x) for x in lines], out=splits[1:])
            return self._encode_buffer(buf, splits, errors, False, num_threads, source="<lines>")
        if not all(isinstance(x, str) for x in lines):
            bad = next(x for x in lines if not isinstance(x, str))
            raise TypeError(
                f"lines must all be str or all be bytes, got an item of type {type(bad).__name__}")
        return Encoding(*self._native.encode_lines(lines, num_threads))

    def encode_file(self, path, *, errors: str = "strict", num_threads: int = -1) -> Encoding:
        """Tokenize a whole text file, line by line as Google's readers see it.

        Lines are split on ``\\n`` only and every ``\\r`` is removed (TensorFlow GFile). With
        ``errors="strict"`` invalid UTF-8 raises ValueError naming the file, line and bytes.
        """
        num_threads = resolve_num_threads(num_threads)  # checked before any work
        _check_errors(errors)
        path = os.fspath(path)
        with open(path, "rb") as f:
            data = f.read()
        return self.encode_file_bytes(data, source=path, errors=errors, num_threads=num_threads)

    def encode_file_bytes(self, data, *, source: str = "<bytes>", errors: str = "strict",
                          num_threads: int = -1, with_offsets: bool = True) -> Encoding:
        """``encode_file`` on a file's bytes already in memory (bytes, bytearray, memoryview or
        mmap): lines split on ``\\n`` only, every ``\\r`` removed; ``source`` names the data in
        errors. ``with_offsets=False`` leaves ``starts``/``ends`` empty (less work and memory when
        no word alignment follows)."""
        num_threads = resolve_num_threads(num_threads)
        _check_errors(errors)
        return self._encode_buffer(data, None, errors, True, num_threads, source=source,
                                   with_offsets=bool(with_offsets))

    def _encode_buffer(self, data, splits, errors, strip_cr, num_threads, source,
                       with_offsets=True):
        """Tokenize a buffer of lines (private; ``encode_file_bytes`` is the checked entry)."""
        num_threads = resolve_num_threads(num_threads)
        (ids, row_splits, starts, ends, blank, line_splits, err_line, err_byte,
         err_len) = self._native.encode_buffer(data, splits, errors, strip_cr, num_threads,
                                               with_offsets)
        if err_line >= 0:
            raise _utf8_error(source, data, line_splits, err_line, err_byte, err_len, strip_cr)
        return Encoding(ids, row_splits, starts, ends, blank)

    def is_subword(self, ids: np.ndarray) -> np.ndarray:
        """uint8 flags: 1 where the token string starts with ``##`` (a WordPiece continuation)."""
        return self._suffix[np.asarray(ids)]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self):
        return (f"FullTokenizer(vocab_file={self.vocab_file!r}, do_lower_case={self.do_lower_case}, "
                f"vocab_size={len(self.vocab)})")


def _utf8_error(source, data, line_splits, line, byte, length, strip_cr) -> ValueError:
    raw = bytes(data[line_splits[line]:line_splits[line + 1]])
    if strip_cr:
        raw = raw.replace(b"\r", b"")
    bad = raw[byte:byte + length]
    context = raw[max(0, byte - 12):byte + length + 12]
    return ValueError(
        f"{source}: line {line + 1}: invalid UTF-8 {bad!r} at byte {byte} of the line "
        f"(near {context!r}); pass errors='ignore' (on the command line: --errors ignore) to "
        f"drop invalid bytes as Google's convert_to_unicode does")
