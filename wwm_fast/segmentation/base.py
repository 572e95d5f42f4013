"""The segmenter interface and ``get_segmenter``, which builds one from a spec string.

Spec strings (the ``--segmenter`` flag):

========================  ======================================================================
``ltp:PATH``              LTP legacy (averaged perceptron), native (``ltp_native``): a CWS
                          model file, or a folder in LTP's hub layout (``config.json`` naming
                          the cws file, as ``LTP/legacy`` is distributed); ``ltp-extension``'s
                          words. ``ltp-legacy:PATH`` is the same.
``ltp-rust:PATH``         the same model run by ``ltp-extension`` itself (Rust; extra
                          ``wwm-fast[ltp]``), the reference the native kernel is tested against.
``ltp-neural:NAME|PATH``  neural LTP (``ltp`` + torch, extra ``wwm-fast[ltp-neural]``):
                          ``LTP/tiny`` etc. from the local Hugging Face cache, or a local folder.
``jieba``                 jieba with its bundled dictionary, HMM on (jieba's default);
                          ``jieba:nohmm`` turns the HMM off.
``pre:DELIM``             pre-segmented text, words separated by ``DELIM`` (``pre`` alone: one
                          space).
========================  ======================================================================

``Segmenter.spec`` is the canonical form recorded in segmentation caches, with a fingerprint of
the model (``ltp-legacy:/abs/cws_model.bin#<12 hex of sha256>``); ``get_segmenter(seg.spec)``
rebuilds the same segmenter and refuses a model file whose content changed.
"""

from __future__ import annotations

import abc
import os
from typing import List, Optional, Sequence

import numpy as np

from ..alignment import WordSpans
from ..tokenization import _resolve_threads
from ._spans import spans_from_pieces, spans_to_words

__all__ = ["Segmenter", "get_segmenter", "KINDS"]

KINDS = ("ltp", "ltp-legacy", "ltp-rust", "ltp-neural", "jieba", "pre")


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
        self.num_threads = _resolve_threads(num_threads)
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


def _split_fingerprint(arg: str):
    """``PATH#0123456789ab`` -> (PATH, "0123456789ab"); anything else -> (arg, None)."""
    head, sep, tail = arg.rpartition("#")
    if sep and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail):
        return head, tail
    return arg, None


def get_segmenter(spec: str, num_threads: int = 1) -> Segmenter:
    """A segmenter from a spec string (see the module docstring for the forms).

    Parameters
    ----------
    spec : str
        ``"ltp:PATH"``, ``"ltp-neural:LTP/tiny"``, ``"jieba"``, ``"pre: "``, or a canonical
        ``Segmenter.spec``.
    num_threads : int, default 1
        Threads inside the segmenter: LTP legacy splits a batch over threads (``ltp-rust``: its
        Rust thread pool, sized by the first parallel call in a process, see README); -1 = all
        cores.

    Raises ValueError naming the problem for an unknown kind, a missing or corrupt model file,
    or a segmenter package that is not installed (with the pip extra to install).
    """
    if not isinstance(spec, str):
        raise TypeError(f"segmenter spec must be a str, got {type(spec).__name__}")
    num_threads = _resolve_threads(num_threads)
    kind, sep, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("ltp", "ltp-legacy", "ltp-rust"):
        if not arg.strip():
            raise ValueError(
                f"segmenter {spec!r} needs a model path: 'ltp:/path/to/cws_model.bin' or "
                f"'ltp:/path/to/LTP-legacy-folder' (train one with `wwm-fast train-segmenter`)")
        if kind == "ltp-rust":
            from .ltp import LTPLegacySegmenter as cls
        else:
            from .ltp_native import LTPNativeSegmenter as cls
        path, fingerprint = _split_fingerprint(arg.strip())
        return cls(path, num_threads=num_threads, fingerprint=fingerprint)
    if kind == "ltp-neural":
        if not arg.strip():
            raise ValueError(f"segmenter {spec!r} needs a model: 'ltp-neural:LTP/tiny' or "
                             f"'ltp-neural:/path/to/model-folder'")
        from .ltp import LTPNeuralSegmenter
        name, fingerprint = _split_fingerprint(arg.strip())
        return LTPNeuralSegmenter(name, num_threads=num_threads, fingerprint=fingerprint)
    if kind == "jieba":
        from .jieba import JiebaSegmenter
        return JiebaSegmenter.from_arg(arg, num_threads=num_threads)
    if kind == "pre":
        from .pre import PreSegmenter
        return PreSegmenter(arg if sep and arg != "" else " ", num_threads=num_threads)
    raise ValueError(f"unknown segmenter {spec!r}: expected one of 'ltp:PATH', "
                     f"'ltp-rust:PATH', 'ltp-neural:NAME', 'jieba', 'pre:DELIM'")


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
    return os.path.abspath(os.path.expanduser(path))
