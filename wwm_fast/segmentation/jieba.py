"""jieba word segmentation (MIT; ships its own dictionary, so it works offline).

One segmenter kind (``jieba``, built by registry.py); it must not import the registry.

A private ``jieba.Tokenizer()`` is used, never jieba's global one, so user dictionaries added to
the global tokenizer elsewhere do not leak in, and its "Building prefix dict..." log lines are
silenced while the dictionary loads. jieba yields whitespace as tokens of its own; they become
no word (see ``_spans``). Full-width letters and digits (``１９９８年``) are segmented as jieba
segments their ASCII twins (``1998 年``), not one character each.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence

from .base import Segmenter

__all__ = ["JiebaSegmenter"]


def _import_jieba():
    try:
        import jieba
    except ImportError:
        raise ValueError("segmenter 'jieba' needs the package jieba, which is not installed: "
                         "pip install 'wwm-fast[jieba]'") from None
    return jieba


# Full-width ASCII variants U+FF01-FF5E -> U+0021-007E (one character to one)
_FULLWIDTH_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}

# Loaded tokenizers, per dictionary, shared by the segmenters of this process (loading takes
# about a second; a tokenizer is never modified after loading, so sharing it is safe).
_TOKENIZERS: dict = {}


def _load_tokenizer(jieba, dictionary: Optional[str]):
    tokenizer = _TOKENIZERS.get(dictionary)
    if tokenizer is not None:
        return tokenizer
    tokenizer = jieba.Tokenizer(dictionary) if dictionary is not None else jieba.Tokenizer()
    logger = logging.getLogger("jieba")
    level = logger.level
    logger.setLevel(logging.WARNING)  # jieba logs "Building prefix dict..." at DEBUG to stderr
    try:
        tokenizer.initialize()
    except Exception as e:
        raise ValueError(f"jieba cannot load its dictionary: {e}") from None
    finally:
        logger.setLevel(level)
    _TOKENIZERS[dictionary] = tokenizer
    return tokenizer


class JiebaSegmenter(Segmenter):
    """jieba's accurate mode (``Tokenizer.cut``), HMM for unknown words on by default.

    Parameters
    ----------
    hmm : bool, default True
        jieba's default; ``jieba:nohmm`` turns it off.
    dictionary : str, optional
        A dictionary file replacing jieba's bundled one (spec ``jieba:dict=PATH``).
    """

    kind = "jieba"

    def __init__(self, hmm: bool = True, dictionary: Optional[str] = None, num_threads: int = 1):
        jieba = _import_jieba()
        version = getattr(jieba, "__version__", "unknown")
        options = "hmm" if hmm else "nohmm"
        if dictionary is not None:
            from .base import abspath, sha256_file

            dictionary = abspath(dictionary)
            try:
                digest = sha256_file(dictionary)[:12]
            except OSError as e:
                raise ValueError(f"jieba dictionary {dictionary!r} cannot be read: {e}") from None
            options += f",dict={dictionary}#{digest}"
        super().__init__(f"jieba:{options}@{version}", num_threads)
        self.hmm = bool(hmm)
        self.dictionary = dictionary
        self._tokenizer = None  # the dictionary is loaded on first use (about a second)

    def load(self):
        """Load the dictionary now (it is otherwise loaded by the first ``segment_batch``)."""
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(_import_jieba(), self.dictionary)
        return self._tokenizer

    @classmethod
    def from_arg(cls, arg: str, num_threads: int = 1) -> "JiebaSegmenter":
        """Parse ``hmm|nohmm[,dict=PATH][@version]`` (the part after ``jieba:``)."""
        arg = arg.strip()
        recorded_version = None
        if "@" in arg:
            arg, recorded_version = arg.rsplit("@", 1)
        hmm = True
        dictionary = None
        for part in filter(None, (p.strip() for p in arg.split(","))):
            if part == "hmm":
                hmm = True
            elif part == "nohmm":
                hmm = False
            elif part.startswith("dict="):
                dictionary, _, _digest = part[5:].rpartition("#") if "#" in part else (
                    part[5:], "", "")
            else:
                raise ValueError(f"unknown jieba option {part!r}: expected 'hmm', 'nohmm' or "
                                 f"'dict=PATH'")
        seg = cls(hmm=hmm, dictionary=dictionary, num_threads=num_threads)
        if recorded_version is not None and not seg.spec.endswith("@" + recorded_version):
            raise ValueError(f"segmenter spec 'jieba:{arg}@{recorded_version}' was recorded with "
                             f"jieba {recorded_version}, but {seg.spec.rsplit('@', 1)[1]} is "
                             f"installed")
        return seg

    def _segment(self, lines: List[str]) -> Sequence[Sequence[str]]:
        cut = self.load().cut
        hmm = self.hmm
        out = []
        for line in lines:
            # jieba keeps runs of ASCII letters/digits together but cuts full-width ones
            # (１９９８, common in Chinese text) into single characters, which WordPiece then
            # cannot align (１９ ##９８ spans four words). Cut a half-width copy instead: the fold
            # maps one character to one, so the pieces' lengths hold for the original line.
            folded = line.translate(_FULLWIDTH_FOLD)
            if folded is line or folded == line:
                out.append(list(cut(line, HMM=hmm)))
            else:
                pieces = []
                pos = 0
                for p in cut(folded, HMM=hmm):
                    pieces.append(line[pos:pos + len(p)])
                    pos += len(p)
                out.append(pieces)
        return out
