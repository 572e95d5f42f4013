"""Segmenting through an OpenCC-converted view (``segment --convert t2s``).

Mirrors wwm_fast/segmentation/convert.py. The traditional texts here are made from the shared
simplified corpora with OpenCC ``s2t``, which keeps every character's place (checked), so the
People's Daily gold segmentation holds for its traditional version word for word.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from wwm_fast import FullTokenizer
from wwm_fast.cli import main as cli_main
from wwm_fast.files import TMP_SUFFIX, decode_lines
from wwm_fast.segmentation import (evaluate_segmenter, get_segmenter, read_cache,
                                   read_cache_header, segment_files)
from wwm_fast.segmentation.base import Segmenter
from wwm_fast.segmentation.registry import cached_segmenter

from conftest import PEOPLE_DAILY, REVIEWS, require_shared_data
from segmentation_helpers import gold_sentences, ltp_model, write_lines  # noqa: F401
from test_segmentation import check_spans

opencc = pytest.importorskip("opencc")
from wwm_fast.segmentation import convert as convert_module  # noqa: E402
from wwm_fast.segmentation.convert import (  # noqa: E402
    LENGTH_PRESERVING_DICTS, ConvertedSegmenter, DictionaryError, OpenCCConverter, get_converter,
    opencc_configs, read_ocd2)

_S2T = opencc.OpenCC("s2t.json")


def to_traditional(text: str) -> str:
    out = _S2T.convert(text)
    assert len(out) == len(text)  # s2t keeps every character's place
    return out


def traditional_words(words):
    """A segmented sentence in traditional script, same word boundaries."""
    line = to_traditional("".join(words))
    out, pos = [], 0
    for w in words:
        out.append(line[pos:pos + len(w)])
        pos += len(w)
    return out


def same_words(a, b):
    return (np.array_equal(a.starts, b.starts) and np.array_equal(a.ends, b.ends)
            and np.array_equal(a.row_splits, b.row_splits))


class MaxMatch(Segmenter):
    """Forward maximum matching over a fixed word list: a plain segmenter whose words are obvious,
    for the golden table."""

    kind = "maxmatch"

    def __init__(self, words):
        super().__init__("maxmatch")
        self.vocab = set(words)
        self.longest = max(map(len, words))

    def _segment(self, lines):
        out = []
        for line in lines:
            words, i = [], 0
            while i < len(line):
                for n in range(min(self.longest, len(line) - i), 0, -1):
                    if n == 1 or line[i:i + n] in self.vocab:
                        words.append(line[i:i + n])
                        i += n
                        break
            out.append(words)
        return out


VOCAB = ["这个", "内存", "端口", "鼠标", "不够", "干燥", "头发", "软体", "很好"]


@pytest.mark.parametrize("config, line, words", [
    # 0: one character for one: the words of the converted line, in the original's characters
    ("t2s", "這個軟體很好", ["這個", "軟體", "很好"]),
    # 1: a phrase converted as a whole (乾燥 -> 干燥, 乾 alone stays 乾), spaces kept out of words
    ("t2s", "  乾燥 的頭髮\u3000", ["乾燥", "的", "頭髮"]),
    # 2: 記憶體 -> 内存 (3 -> 2) and 埠 -> 端口 (1 -> 2): the line changes length
    ("tw2sp", "這個記憶體的埠不夠", ["這個", "記憶體", "的", "埠", "不夠"]),
    # 3: 滑鼠 -> 鼠标: same length, but 鼠 matches at another place; the phrase stays whole
    ("tw2sp", "滑鼠壞了很好", ["滑鼠", "壞", "了", "很好"]),
    # 4: a converted word boundary inside a block that changed length (的端|口): the block goes
    #    whole into the word of its first converted character
    ("tw2sp", "的埠不夠", ["的埠", "不夠"]),
    # 5: s2twp turns simplified into Taiwan phrases (内存 -> 記憶體): spans still over the original
    ("s2twp", "这个内存不够", ["这", "个", "内存", "不", "够"]),
    # 6: empty and whitespace-only lines have no word
    ("t2s", "", []),
    ("tw2sp", " \t ", []),
])
def test_golden(config, line, words):
    vocab = VOCAB + (["的端"] if line == "的埠不夠" else []) + ["記憶體"]
    seg = ConvertedSegmenter(MaxMatch(vocab), config)
    spans = seg.segment_batch([line])
    check_spans([line], spans)
    assert seg.words([line]) == [words]
    assert seg.n_convert_fallback == 0


def test_length_preserving_dictionaries():
    """The dictionaries that convert.py trusts to keep phrase lengths do, in the installed OpenCC
    (read with its own opencc_dict tool), and none of them has whitespace in a key or a value."""
    base = Path(opencc.__file__).parent / "clib"
    tool, share = base / "bin" / "opencc_dict", base / "share" / "opencc"
    if not tool.exists():
        pytest.skip("this opencc build ships no opencc_dict tool")
    seen = set()
    for ocd in sorted(share.glob("*.ocd2")):
        name = ocd.stem
        text = subprocess.run([str(tool), "-i", str(ocd), "-o", "/dev/stdout", "-f", "ocd2",
                               "-t", "text"], capture_output=True, check=True).stdout
        changed = []
        for row in text.decode("utf-8").splitlines():
            key, _, values = row.partition("\t")
            first = values.split(" ")[0]
            assert not re.search(r"\s", key) and not re.search(r"\s", first), (name, row)
            if len(first) != len(key):
                changed.append((key, first))
        if name in LENGTH_PRESERVING_DICTS:
            assert not changed, (name, changed[:5])
            seen.add(name)
        else:
            assert changed, f"{name} keeps lengths: add it to LENGTH_PRESERVING_DICTS"
    assert seen == LENGTH_PRESERVING_DICTS
    flags = {c: get_converter(c).may_change_length for c in opencc_configs()}
    assert not any(flags[c] for c in ("t2s", "tw2s", "hk2s", "s2t", "t2tw", "tw2t"))
    assert all(flags[c] for c in ("tw2sp", "hk2sp", "s2twp", "s2hkp"))


def test_every_character_converts_to_one(monkeypatch):
    """OpenCC maps each character alone to one character and never touches whitespace, for every
    code point (except 埠 -> 端口 in tw2sp), which the position-by-position mapping relies on."""
    cps = [chr(i) for i in range(1, 0x110000) if not 0xD800 <= i < 0xE000 and i != 10]
    for config in ("t2s", "tw2sp"):
        conv = get_converter(config)
        out = conv.convert("\n".join(cps)).split("\n")
        assert len(out) == len(cps)
        odd = {(a, b) for a, b in zip(cps, out) if len(b) != 1 or a.isspace() != b.isspace()}
        assert odd <= {("埠", "端口")}, (config, sorted(odd)[:5])


@pytest.fixture(scope="module")
def traditional_lines():
    """People's Daily (a slice) and reviews lines in traditional script, with odd whitespace."""
    require_shared_data()
    pd = gzip.open(PEOPLE_DAILY, "rb").read().decode("utf-8").split("\n")[:3000]
    rv = gzip.open(REVIEWS, "rb").read().decode("utf-8").split("\n")[:2000]
    lines = [to_traditional(x) for x in pd + rv]
    lines[3] = "  " + lines[3] + "\u3000 "
    lines[4] = " \t "
    return lines


def test_same_length_conversion_maps_position_by_position(traditional_lines, ltp_model):
    """t2s keeps every line's length: the words are exactly those of the converted lines."""
    ltp = get_segmenter(f"ltp:{ltp_model}")
    seg = ConvertedSegmenter(ltp, "t2s")
    words = seg.segment_batch(traditional_lines)
    check_spans(traditional_lines, words)
    converted = get_converter("t2s").convert(
        "\n".join(traditional_lines)).split("\n")
    assert same_words(words, ltp.segment_batch(converted))
    assert seg.n_convert_fallback == seg.n_convert_realigned == 0
    # and the conversion matters: the words differ from segmenting the traditional text
    assert not same_words(words, ltp.segment_batch(traditional_lines))


def _is_cut(conv: OpenCCConverter, line: str, converted: str, i: int, j: int) -> bool:
    return (conv.convert(line[:i]) == converted[:j]
            and conv.convert(line[i:]) == converted[j:])


@pytest.mark.parametrize("config", ["tw2sp", "s2twp"])
def test_alignment_of_lines_that_change_length(config, traditional_lines, ltp_model):
    """Lines whose conversion changes length, from the real corpora: every alignment point is a
    place where OpenCC's conversion splits (checked by converting both sides), or lies inside a
    block of equal lengths bounded by such places; a block whose lengths differ converts alone to
    its converted text and is short (a phrase); words map back as the alignment says."""
    require_shared_data()
    conv = get_converter(config)
    if config == "s2twp":  # simplified in, Taiwan phrases out
        lines = gzip.open(PEOPLE_DAILY, "rb").read().decode("utf-8").split("\n")[:6000]
    else:
        lines = traditional_lines
    converted, failed = conv.convert_lines(lines)
    assert not failed
    changed = [i for i, (a, b) in enumerate(zip(lines, converted)) if len(a) != len(b)]
    assert len(changed) >= 5, config
    seg = ConvertedSegmenter(get_segmenter(f"ltp:{ltp_model}"), conv)
    for i in changed[:60]:
        line, c = lines[i], converted[i]
        points = conv.alignment(line, c)
        assert points[0] == (0, 0) and points[-1] == (len(line), len(c))
        assert all(a[0] < b[0] or a[1] < b[1] for a, b in zip(points, points[1:]))
        cuts = [p for p in points if _is_cut(conv, line, c, *p)]
        for (i0, j0), (i1, j1) in zip(cuts, cuts[1:]):
            assert conv.convert(line[i0:i1]) == c[j0:j1]
            inner = [p for p in points if i0 < p[0] < i1]
            if inner:  # points that are not cuts: positions in a same-length block
                assert i1 - i0 == j1 - j0 and all(p[0] - i0 == p[1] - j0 for p in inner)
            if i1 - i0 != j1 - j0:
                assert i1 - i0 <= 12 and j1 - j0 <= 12, (line[i0:i1], c[j0:j1])
        # the words: a converted word inside a position-by-position block is an original word
        words = seg.words([line])[0]
        conv_words = seg.segmenter.segment_batch([c])
        spans = seg.segment_batch([line])
        check_spans([line], spans)
        starts = set(spans.starts.tolist())
        for (i0, j0), (i1, j1) in zip(points, points[1:]):
            if i1 - i0 == j1 - j0:
                for s, e in zip(conv_words.starts.tolist(), conv_words.ends.tolist()):
                    if j0 < s < j1 and not c[s - 1].isspace():
                        assert i0 + s - j0 in starts, (line, words)
            else:  # a phrase that changed length lies inside one original word
                inside = [s for s in starts if i0 < s < i1]
                assert not inside, (line, words, line[i0:i1])
    assert seg.n_convert_fallback == 0


def test_tw2sp_aligns_only_what_it_must(traditional_lines):
    """With a config whose phrases may change length, lines of unchanged length are aligned only
    where a character is not converted as it is alone; the rest map position by position."""
    conv = get_converter("tw2sp")
    converted, _ = conv.convert_lines(traditional_lines)
    alone = ["".join(conv.convert_chars(x)) for x in traditional_lines]
    must = sum(1 for a, b in zip(traditional_lines, converted) if len(a) != len(b))
    may = sum(1 for a, b, c in zip(traditional_lines, converted, alone)
              if len(a) != len(b) or b != c)
    seg = ConvertedSegmenter(MaxMatch(VOCAB), conv)
    words = seg.segment_batch(traditional_lines)
    check_spans(traditional_lines, words)
    assert 0 < must <= seg.n_convert_realigned <= may < len(traditional_lines) // 5
    assert seg.n_convert_fallback == 0
    # t2s keeps lengths: nothing to align
    t2s = ConvertedSegmenter(MaxMatch(VOCAB), "t2s")
    t2s.segment_batch(traditional_lines)
    assert t2s.n_convert_realigned == 0


# -- the bar: traditional People's Daily, trained on simplified -------------------------------
def _traditional_scores(seg, held_out):
    trad = [traditional_words(w) for w in held_out]
    plain = evaluate_segmenter(seg, gold_words=trad)
    converted_seg = ConvertedSegmenter(seg, "t2s")
    converted = evaluate_segmenter(converted_seg, gold_words=trad)
    simplified = evaluate_segmenter(seg, gold_words=held_out)
    assert converted_seg.n_convert_fallback == 0
    raw = ["".join(w) for w in trad]
    check_spans(raw, converted_seg.segment_batch(raw))
    return plain, converted, simplified


def test_traditional_gold_small_model(ltp_model):
    """The small session model (2 epochs on 3,000 simplified gold sentences), scored on the last
    10% of the gold converted to traditional: segmenting through t2s recovers what the script
    change lost (measured: word F1 78.02 -> 86.42; 86.42 on the simplified text)."""
    gold = [g.split() for g in gold_sentences()]
    held_out = gold[len(gold) * 9 // 10:]
    plain, converted, simplified = _traditional_scores(get_segmenter(f"ltp:{ltp_model}"),
                                                       held_out)
    print(f"traditional held-out: word F1 {plain.word_f1:.2f} plain, {converted.word_f1:.2f} "
          f"with t2s ({simplified.word_f1:.2f} on simplified)")
    assert converted.word_f1 >= plain.word_f1 + 5, (plain, converted)
    assert converted.word_f1 >= simplified.word_f1 - 0.5, (converted, simplified)


@pytest.mark.slow
def test_traditional_gold_90_10(tmp_path, vocab_file):
    """The issue's measurement: LTP trained on the simplified 90% (10 epochs, seed 12345), word F1
    on the held-out 10% in traditional script, without and with --convert t2s
    (measured: 82.59 -> 95.44, the same as on the simplified text; continuation-token F1
    88.21 -> 97.15). ~40-100 s of training and 1.5 GB."""
    from wwm_fast.segmentation import train_ltp_segmenter

    gold = gold_sentences()
    k = len(gold) * 9 // 10
    train = write_lines(tmp_path / "train.txt", gold[:k])
    model = str(tmp_path / "cws.bin")
    train_ltp_segmenter(train, model, epoch=10)
    held_out = [g.split() for g in gold[k:]]
    plain, converted, simplified = _traditional_scores(get_segmenter(f"ltp:{model}"), held_out)
    tok = FullTokenizer(vocab_file)
    trad = [traditional_words(w) for w in held_out]
    cont = [evaluate_segmenter(s, gold_words=trad, tokenizer=tok).cont_f1
            for s in (get_segmenter(f"ltp:{model}"),
                      ConvertedSegmenter(get_segmenter(f"ltp:{model}"), "t2s"))]
    print(f"held-out {plain.n_lines} sentences in traditional script: word F1 "
          f"{plain.word_f1:.2f} plain, {converted.word_f1:.2f} with t2s (simplified text: "
          f"{simplified.word_f1:.2f}); continuation-token F1 {cont[0]:.2f} -> {cont[1]:.2f}")
    assert converted.word_f1 >= plain.word_f1 + 3, (plain, converted)
    assert converted.word_f1 >= simplified.word_f1 - 0.5, (converted, simplified)


# -- the command and the caches -----------------------------------------------------------------
@pytest.fixture(scope="module")
def trad_files(tmp_path_factory, traditional_lines):
    folder = tmp_path_factory.mktemp("trad")
    write_lines(folder / "pd.txt", traditional_lines[:3000])
    write_lines(folder / "rv.txt.gz", traditional_lines[3000:])
    return folder


def run_cli(capsys, *argv):
    code = cli_main(["segment", "--noprogress", *argv])
    return code, capsys.readouterr().err


def test_cli_convert_and_tokens_unchanged(trad_files, ltp_model, vocab_file, tmp_path, capsys):
    """A converted and an unconverted run keep the same text: the caches hold the input bytes,
    and create on each gives the same tokens (records unmasked); only the words differ."""
    spec = f"ltp:{ltp_model}"
    outs = {}
    for name, extra in [("plain", []), ("t2s", ["--convert", "t2s"])]:
        code, err = run_cli(capsys, "--input_file", f"{trad_files}/*", "--segmenter", spec,
                            "--output_dir", str(tmp_path / name), "--num_workers", "1", *extra)
        assert code == 0, err
        assert "segmented 2 file(s)" in err and "warning" not in err
        outs[name] = tmp_path / name
    assert "|convert=opencc:t2s@" in err
    for name in ("pd.txt", "rv.txt"):
        plain = read_cache(outs["plain"] / (name + ".wwmseg"))
        conv = read_cache(outs["t2s"] / (name + ".wwmseg"))
        src = trad_files / (name if name == "pd.txt" else name + ".gz")
        data = gzip.open(src).read() if src.suffix == ".gz" else src.read_bytes()
        assert plain.data == conv.data == data
        assert conv.segmenter == get_segmenter(spec).spec + "|convert=opencc:t2s@" + \
            get_converter("t2s").version
        assert conv.header["n_convert_fallback"] == 0
        assert "n_convert_fallback" not in plain.header
        check_spans(decode_lines(conv.data), conv.words)
        assert not same_words(plain.words, conv.words)
    tokens = {}
    import wwm_fast
    from wwm_fast.tfrecord import parse_example, read_records

    for name, folder in outs.items():
        out = tmp_path / f"{name}.tfrecord"
        wwm_fast.create_instances(str(folder / "*.wwmseg"), vocab_file, str(out),
                                  do_whole_word_mask=True, dupe_factor=2, random_seed=7,
                                  num_workers=1, progress=False)
        ids = []
        for path in sorted(tmp_path.glob(f"{name}-*.tfrecord")):
            for rec in read_records(path):
                ex = parse_example(rec)
                x = ex["input_ids"].copy()
                n = int(ex["masked_lm_weights"].sum())
                x[ex["masked_lm_positions"][:n]] = ex["masked_lm_ids"][:n]
                ids.append(x)
        tokens[name] = np.concatenate(ids)
    assert len(tokens["plain"]) > 10000
    assert np.array_equal(tokens["plain"], tokens["t2s"])


def test_caches_with_and_without_convert_are_not_mixed(trad_files, tmp_path, vocab_file):
    out = tmp_path / "out"
    first = segment_files(str(trad_files / "*"), "jieba", str(out), progress=False)
    assert first.n_segmented == 2
    conv = segment_files(str(trad_files / "*"), "jieba", str(out), convert="t2s", progress=False)
    assert (conv.n_segmented, conv.n_skipped) == (2, 0)  # not taken for the unconverted caches
    assert read_cache_header(conv.outputs[0])["segmenter"].endswith(
        "|convert=opencc:t2s@" + get_converter("t2s").version)
    again = segment_files(str(trad_files / "*"), "jieba", str(out), convert="t2s", progress=False)
    assert (again.n_segmented, again.n_skipped) == (0, 2)
    # the same through the spec string
    assert segment_files(str(trad_files / "*"), "jieba|convert=t2s", str(out),
                         progress=False).n_skipped == 2
    assert segment_files(str(trad_files / "*"), "jieba", str(out),
                         progress=False).n_segmented == 2
    # create refuses a cache made otherwise than --segmenter says
    import wwm_fast

    segment_files(str(trad_files / "*"), "jieba", str(out), convert="t2s", progress=False)
    plain_spec = get_segmenter("jieba").spec
    with pytest.raises(ValueError, match=r"cache was made with .*\|convert=opencc:t2s"):
        wwm_fast.create_instances(str(out / "pd.txt.wwmseg"), vocab_file,
                                  str(tmp_path / "x.tfrecord"), segmenter=plain_spec,
                                  progress=False)
    # and takes it with the converted spec
    wwm_fast.create_instances(str(out / "pd.txt.wwmseg"), vocab_file,
                              str(tmp_path / "y.tfrecord"), dupe_factor=1,
                              segmenter=get_segmenter("jieba|convert=t2s").spec, progress=False)


def test_two_workers_equal_one(trad_files, tmp_path):
    one = segment_files(str(trad_files / "*"), "jieba", str(tmp_path / "one"), convert="tw2sp",
                        num_workers=1, progress=False, chunk_chars=20000)
    two = segment_files(str(trad_files / "*"), "jieba", str(tmp_path / "two"), convert="tw2sp",
                        num_workers=2, progress=False, chunk_chars=20000)
    for a, b in zip(one.outputs, two.outputs):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert one.n_convert_realigned == two.n_convert_realigned > 0
    assert one.n_convert_fallback == two.n_convert_fallback == 0


def test_spec_round_trip():
    seg = ConvertedSegmenter(get_segmenter("jieba"), "t2s")
    assert seg.spec == get_segmenter("jieba").spec + "|convert=" + get_converter("t2s").spec
    again = get_segmenter(seg.spec)
    assert isinstance(again, ConvertedSegmenter) and again.spec == seg.spec
    assert get_segmenter("jieba|convert=t2s").spec == seg.spec
    assert get_segmenter("jieba|convert=opencc:t2s.json").spec == seg.spec
    lines = [to_traditional("他叫汤姆去拿外衣。"), "乾燥的頭髮"]
    assert again.words(lines) == seg.words(lines)
    # the registry parses the suffix: a "|" elsewhere is not one, and one conversion at most
    pre = get_segmenter("pre:|")
    assert type(pre).__name__ == "PreSegmenter" and pre.spec == get_segmenter(pre.spec).spec
    words = pre.segment_batch(["中国人民"], segmented=["中国|人民"])
    assert words.starts.tolist() == [0, 2] and words.ends.tolist() == [2, 4]
    with pytest.raises(ValueError, match="already converts its input"):
        get_segmenter("jieba|convert=t2s|convert=t2s")
    with pytest.raises(ValueError, match="convert does not apply to a pre-segmented input"):
        get_segmenter("pre: |convert=t2s")


def test_spec_of_native_ltp(ltp_model):
    """``ltp:`` (the native kernel) converted: its spec rebuilds it in a worker."""
    seg = get_segmenter(f"ltp:{ltp_model}|convert=t2s", num_threads=2)
    assert seg.spec.startswith("ltp-legacy:") and seg.segmenter.num_threads == 2
    assert type(cached_segmenter(seg.spec, 2).segmenter) is type(seg.segmenter)
    line = to_traditional("他叫汤姆去拿外衣。")
    assert seg.segment(line) == ConvertedSegmenter(get_segmenter(f"ltp-rust:{ltp_model}"),
                                                   "t2s").segment(line)


def test_fallback_lines_are_segmented_unconverted_and_counted(ltp_model):
    """A line whose conversion cannot be lined up with it is segmented as it is, and counted.
    OpenCC itself never moves whitespace; a converter that turns 的 into a space stands in for a
    dictionary that would. A lone surrogate (no UTF-8 form) cannot be converted at all."""

    class Spacey(OpenCCConverter):
        def convert(self, text):
            return super().convert(text).replace("的", " ")

    ltp = get_segmenter(f"ltp:{ltp_model}")
    seg = ConvertedSegmenter(ltp, Spacey("t2s", native=False))
    lines = ["這個軟體很好", "乾燥的頭髮", "我們的", "", "軟體"]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    assert seg.n_convert_fallback == 2
    got = seg.words(lines)
    assert got[1:3] == ltp.words(lines)[1:3]  # as segmented unconverted
    good = ConvertedSegmenter(ltp, "t2s").words(lines)
    assert [got[i] for i in (0, 3, 4)] == [good[i] for i in (0, 3, 4)]
    # LTP takes no lone surrogate at all; a segmenter that does gets the line unconverted
    mm = ConvertedSegmenter(MaxMatch(VOCAB), "t2s")
    lines = ["他說\ud800好", "這個軟體"]
    check_spans(lines, mm.segment_batch(lines))
    assert mm.n_convert_fallback == 1
    assert mm.words(lines) == [["他", "說", "\ud800", "好"], ["這個", "軟體"]]


def test_fallback_is_reported(trad_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(convert_module.NATIVE_ENV, "0")  # the opencc package, patched below
    real = OpenCCConverter.convert
    monkeypatch.setattr(OpenCCConverter, "convert",
                        lambda self, text: real(self, text).replace("的", " "))
    code, err = run_cli(capsys, "--input_file", str(trad_files / "pd.txt"), "--segmenter",
                        "jieba", "--convert", "t2s", "--output_dir", str(tmp_path),
                        "--num_workers", "1")
    assert code == 0, err
    n = read_cache_header(tmp_path / "pd.txt.wwmseg")["n_convert_fallback"]
    assert n > 100
    assert f"warning: {n} line(s) whose conversion could not be mapped back" in err


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["unknown_config", "pre", "not_installed", "twice"])
def test_cli_bad_input(case, trad_files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["--input_file", str(trad_files / "pd.txt"), "--output_dir", str(out)]
    if case == "unknown_config":
        args += ["--segmenter", "jieba", "--convert", "x2y"]
        expect = r"unknown OpenCC config 'x2y' for convert: expected one of .*\bt2s\b.*tw2s"
    elif case == "pre":
        args += ["--segmenter", "pre", "--convert", "t2s"]
        expect = r"convert does not apply to a pre-segmented input"
    elif case == "not_installed":
        import sys

        from wwm_fast.segmentation import convert as convert_module

        monkeypatch.setitem(sys.modules, "opencc", None)
        monkeypatch.setattr(convert_module, "_CONVERTERS", {})
        args += ["--segmenter", "jieba", "--convert", "t2s"]
        expect = r"--convert needs the package opencc, which is not installed: " \
                 r"pip install 'wwm-fast\[opencc\]'"
    else:
        args += ["--segmenter", "jieba|convert=t2s", "--convert", "t2s"]
        expect = r"already converts its input"
    code, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wwm-fast segment: error: "), err
    assert re.search(expect, lines[0]), lines[0]
    assert not out.exists() or not [p for p in out.iterdir()]


def test_python_bad_input():
    with pytest.raises(ValueError, match=r"unknown OpenCC config 't2x' for convert: expected "
                                         r"one of hk2s, .*t2s"):
        get_converter("t2x")
    assert get_converter(" T2S.json").spec == get_converter("t2s").spec
    with pytest.raises(ValueError, match=r"recorded with OpenCC 0\.0\.1, but .* is installed"):
        get_segmenter("jieba|convert=opencc:t2s@0.0.1")
    with pytest.raises(TypeError, match="convert must be an OpenCC config name"):
        ConvertedSegmenter(get_segmenter("jieba"), 3)
    with pytest.raises(TypeError, match="segmenter must be a wwm_fast Segmenter"):
        ConvertedSegmenter("jieba", "t2s")


def test_nothing_half_written(trad_files, tmp_path):
    with pytest.raises(ValueError, match="unknown OpenCC config"):
        segment_files(str(trad_files / "*"), "jieba", str(tmp_path / "o"), convert="nope",
                      progress=False)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*" + TMP_SUFFIX))


def test_header_is_json(trad_files, tmp_path):
    r = segment_files(str(trad_files / "pd.txt"), "jieba", str(tmp_path), convert="hk2s",
                      progress=False)
    h = read_cache_header(r.outputs[0])
    assert json.loads(json.dumps(h))["segmenter"].endswith("|convert=opencc:hk2s@" +
                                                           get_converter("hk2s").version)
    assert os.path.basename(r.outputs[0]) == "pd.txt.wwmseg"


# -- the native converter: OpenCC's output, exactly -----------------------------------------------
_IDS = re.compile("[\u2ff0-\u2fff]")


def opencc_lines(cc, lines):
    """OpenCC's conversion of each line alone (the reference): one call for the batch, line by
    line where an ideographic description sequence could run over a line break, and a line
    OpenCC cannot encode (a lone surrogate) stays as it is."""
    joined = "\n".join(lines)
    if not _IDS.search(joined):
        try:
            out = cc.convert(joined).split("\n")
            if len(out) == len(lines):
                return out
        except UnicodeEncodeError:
            pass
    out = []
    for x in lines:
        try:
            out.append(cc.convert(x))
        except UnicodeEncodeError:
            out.append(x)
    return out


def check_blocks(lines, out, status, blocks):
    """The blocks say exactly where a line's conversion does not follow it character by
    character: outside them the characters pair up (position i -> i + shift)."""
    assert blocks.ndim == 2 and blocks.shape[1] == 5
    by_line = {}
    for row in blocks.tolist():
        by_line.setdefault(row[0], []).append(row[1:])
    for i, (line, conv) in enumerate(zip(lines, out)):
        bl = by_line.get(i, [])
        assert not bl or status[i] == 0
        if status[i] == 2:  # converted by OpenCC itself (truncated at U+0000)
            continue
        pi = pj = 0
        for a, b, c, d in bl:
            assert pi <= a < b <= len(line) and pj <= c <= d <= len(conv)
            assert a - pi == c - pj and (b - a != 1 or d - c != 1)
            pi, pj = b, d
        assert len(line) - pi == len(conv) - pj
        if not bl and status[i] in (0, 3):
            assert len(line) == len(conv)


def native_equals_opencc(conv: OpenCCConverter, lines, ref=None):
    ref = ref or opencc.OpenCC(conv.config + ".json")
    expected = opencc_lines(ref, lines)
    out, status, blocks = conv.convert_mapped(lines)
    assert len(out) == len(expected)
    bad = [(i, lines[i], out[i], expected[i]) for i in range(len(lines)) if out[i] != expected[i]]
    assert not bad, (conv.config, len(bad), bad[:3])
    check_blocks(lines, out, status, blocks)
    assert conv.convert_lines(lines) == (expected, np.flatnonzero(status == 1).tolist())
    return out, status, blocks


def test_native_runs_every_installed_config():
    for config in opencc_configs():
        conv = OpenCCConverter(config)
        assert conv.native and conv.native_reason is None, (config, conv.native_reason)
        assert conv.spec == f"opencc:{config}@{conv.version}"  # the spec does not change


@pytest.fixture(scope="module")
def corpora():
    """Every line of the shared corpora (People's Daily raw, reviews), and in traditional
    script (OpenCC s2t)."""
    require_shared_data()
    lines = []
    for path in (PEOPLE_DAILY, REVIEWS):
        lines += gzip.open(path, "rb").read().decode("utf-8").split("\n")
    return lines + _S2T.convert("\n".join(lines)).split("\n")


@pytest.mark.parametrize("config", ["t2s", "tw2sp", "s2twp", "s2t", "hk2s", "t2jp"])
def test_native_equals_opencc_on_the_corpora(config, corpora):
    """zh_all (People's Daily + reviews), simplified and traditional: the native output is
    OpenCC's, line for line."""
    native_equals_opencc(OpenCCConverter(config), corpora)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["hk2sp", "hk2t", "jp2t", "s2hk", "s2hkp", "s2tw", "t2hk",
                                    "t2tw", "tw2s", "tw2t"])
def test_native_equals_opencc_on_the_corpora_other_configs(config, corpora):
    native_equals_opencc(OpenCCConverter(config), corpora)


@pytest.mark.parametrize("config", opencc_configs())
def test_native_every_code_point(config):
    """Every code point but the surrogates, one per line, and all the BMP in runs of 64 (so that
    each character also meets its neighbours)."""
    conv = OpenCCConverter(config)
    cps = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000 and i != 10]
    native_equals_opencc(conv, cps)
    bmp = "".join(c for c in cps if ord(c) < 0x10000)
    native_equals_opencc(conv, [bmp[i:i + 64] for i in range(0, len(bmp), 64)])


def _dict_keys(config):
    share = Path(convert_module._share_dir(opencc))
    keys, values = [], []
    for name in convert_module._config_dicts(
            convert_module._read_config(str(share / f"{config}.json"))):
        k, v = read_ocd2(str(share / f"{name}.ocd2"))
        keys += k
        values += v
    return sorted(set(keys)), sorted(set(values))


@pytest.mark.parametrize("config", opencc_configs())
def test_native_adversarial(config):
    """Lines built from the config's own keys: keys next to each other, overlapping phrases
    (a key's tail is another key's head), prefixes of keys, values, characters of every
    dictionary, ideographic description sequences (complete, cut short, nested, as a key's
    neighbour), whitespace, U+0000, astral characters and empty lines."""
    import random

    rng = random.Random(15)
    keys, values = _dict_keys(config)
    long_keys = [k for k in keys if len(k) > 1]
    chars = sorted({c for k in keys + values for c in k})
    extra = ["⿰", "⿱", "⿲", "⿾", "⿿", "⿰說", "⿰⿱說話", "⿲說話了", "\u3000", " ", "\t",
             "\x00", "𠀀", "𪚥", "a", "。", ""]

    def piece():
        r = rng.random()
        if r < 0.35:
            return rng.choice(keys)
        if r < 0.55 and long_keys:
            k = rng.choice(long_keys)
            return k[:rng.randrange(1, len(k))] if rng.random() < 0.5 else k[rng.randrange(1, len(k)):]
        if r < 0.7:
            return rng.choice(values)
        if r < 0.85:
            return rng.choice(chars)
        return rng.choice(extra)

    lines = ["".join(piece() for _ in range(rng.randrange(0, 12))) for _ in range(4000)]
    # overlaps: a key followed by a key starting with its last character
    by_head = {}
    for k in long_keys:
        by_head.setdefault(k[0], []).append(k)
    for k in long_keys[:3000]:
        nxt = by_head.get(k[-1])
        if nxt:
            lines.append(k[:-1] + rng.choice(nxt))
    lines += ["", "\x00", "說\x00話", "a\x00" + (long_keys or keys)[0], "⿰", "⿰說", "⿰\x00說"]
    conv = OpenCCConverter(config)
    out, status, _ = native_equals_opencc(conv, lines)
    config_file = Path(convert_module._share_dir(opencc)) / f"{config}.json"
    segmented = "segmentation" in json.loads(config_file.read_text(encoding="utf-8"))
    nul = np.array(["\x00" in x for x in lines])
    # only the lines OpenCC truncates (U+0000 under segmentation) are left to OpenCC itself
    assert np.array_equal(status == 2, nul & segmented)


def test_native_lone_surrogates_and_line_breaks():
    """A lone surrogate has no UTF-8 form: OpenCC cannot take the line, which stays as it is
    (status 1), as with the opencc package path. A line that holds a line break converts as
    OpenCC converts it alone."""
    conv = OpenCCConverter("t2s")
    lines = ["他說\ud800好", "這個軟體", "\udfff", "說\n話", "⿰\n說", ""]
    out, status, blocks = conv.convert_mapped(lines)
    # "⿰\n說" is one complete ideographic description sequence ("\n" is an operand): as is
    assert out == ["他說\ud800好", "这个软体", "\udfff", "说\n话", "⿰\n說", ""]
    assert out[3:] == [opencc.OpenCC("t2s").convert(x) for x in lines[3:]]
    assert status.tolist() == [1, 0, 1, 0, 0, 0] and len(blocks) == 0
    assert OpenCCConverter("t2s", native=False).convert_lines(lines) == (out, [0, 2])
    assert conv.convert_lines(lines) == (out, [0, 2])


def test_native_blocks_of_tw2sp():
    conv = OpenCCConverter("tw2sp")
    out, status, blocks = conv.convert_mapped(["記憶體不夠，資料來源", "滑鼠", "的埠", "說話"])
    assert out == ["内存不够，数据源", "鼠标", "的端口", "说话"]
    assert blocks.tolist() == [[0, 0, 3, 0, 2], [0, 6, 10, 5, 8], [2, 1, 2, 1, 3]]


# -- the native converter on OpenCC configs of our own ---------------------------------------------
def write_ocd2(path: Path, entries):
    """An OpenCC .ocd2 dictionary (the layout read_ocd2 documents) of {key: [values]}."""
    import marisa_trie

    trie = marisa_trie.Trie(list(entries))
    by_id = [None] * len(trie)
    for key, vals in entries.items():
        by_id[trie.key_id(key)] = vals
    buf, table = b"", b""
    for vals in by_id:
        table += struct.pack("<H", len(vals))
        for v in vals:
            raw = v.encode("utf-8") + b"\0"
            buf += raw
            table += struct.pack("<H", len(raw))
    path.write_bytes(convert_module.OCD2_HEADER + trie.tobytes()
                     + struct.pack("<II", len(by_id), len(buf)) + buf + table)


_CUSTOM_DICTS = {
    "A": {"ab": ["X"], "abc": ["YYYY"], "b": ["β"], "c": ["", "z"], "⿰": ["op"], "𠀀a": ["Q"]},
    "B": {"a": ["1"], "abcd": ["2"], "bc": ["33", "x"], "cd": ["4"], "𠀀": ["5"]},
    "C": {"d": ["dd"], "da": ["D"], "a": ["α"], "⿱x": ["ids"]},
    "S": {"ab": ["ab"], "bcd": ["bcd"], "a\x01": ["z"]},
}


def _leaf(name):
    return {"type": "ocd2", "file": f"{name}.ocd2"}


_CUSTOM_CONFIGS = {
    "short": {"conversion_chain": [{"dict": {"type": "group", "dicts": [_leaf("A"), _leaf("B"),
                                                                          _leaf("C")]}}]},
    "union": {"conversion_chain": [{"dict": {"type": "group", "match_policy": "union",
                                             "dicts": [_leaf("A"), _leaf("B"), _leaf("C")]}}]},
    "nested": {"normalization": [{"dict": _leaf("C")}],
               "conversion_chain": [
                   {"dict": {"type": "group", "match_policy": "union", "dicts": [
                       {"type": "group", "dicts": [_leaf("B"), _leaf("A")]}, _leaf("C")]}},
                   {"dict": _leaf("B")}]},
    "segmented": {"segmentation": {"type": "mmseg", "dict": _leaf("S")},
                  "conversion_chain": [{"dict": _leaf("A")}, {"dict": {
                      "type": "group", "dicts": [_leaf("C"), _leaf("B")]}}]},
    "tofu": {"conversion_chain": [{"dict": {"type": "group", "dicts": [
        {"type": "ocd2", "file": "A.ocd2", "may_output_tofu": True}, _leaf("B")]}}]},
}


@pytest.fixture(scope="module")
def custom_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opencc_custom")
    for name, entries in _CUSTOM_DICTS.items():
        write_ocd2(folder / f"{name}.ocd2", entries)
    for name, config in _CUSTOM_CONFIGS.items():
        (folder / f"{name}.json").write_text(json.dumps({"name": name, **config}))
    return folder


@pytest.mark.parametrize("config", sorted(_CUSTOM_CONFIGS))
def test_native_custom_configs(config, custom_dir):
    """Groups (short_circuit, union, nested), chains, normalization, segmentation, values that
    change length or are empty, keys with several values, astral keys, an IDS operator as a key:
    the native converter gives what OpenCC gives with the same files."""
    import itertools
    import random

    path = str(custom_dir / f"{config}.json")
    ref = opencc.OpenCC(path)
    native = convert_module._native_converter(path)
    alphabet = ["a", "b", "c", "d", "x", "𠀀", "⿰", "⿱", "\x01", " "]
    lines = ["".join(p) for n in range(5) for p in itertools.product(alphabet[:6], repeat=n)]
    rng = random.Random(7)
    lines += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(20))) for _ in range(3000)]
    out, status, blocks = convert_module._run_native(native, lines, ref.convert)
    expected = opencc_lines(ref, lines)
    bad = [(x, a, b) for x, a, b in zip(lines, out, expected) if a != b]
    assert not bad, bad[:5]
    check_blocks(lines, out, status, blocks)


def test_read_ocd2_round_trip(tmp_path):
    write_ocd2(tmp_path / "d.ocd2", {"說話": ["说话", "x"], "𠀀": [""], "a": ["b"]})
    keys, values = read_ocd2(str(tmp_path / "d.ocd2"))
    assert dict(zip(keys, values)) == {"說話": "说话", "𠀀": "", "a": "b"}
    share = Path(convert_module._share_dir(opencc))
    keys, values = read_ocd2(str(share / "TSCharacters.ocd2"))
    assert len(keys) == len(values) > 4000 and dict(zip(keys, values))["說"] == "说"


def test_bad_dictionary_files(tmp_path):
    """A truncated or corrupt .ocd2 file: DictionaryError naming the file (never a crash); a
    config using one falls back to the opencc package and says why."""
    share = Path(convert_module._share_dir(opencc))
    good = (share / "TSPhrases.ocd2").read_bytes()
    bad = tmp_path / "TSPhrases.ocd2"
    header = len(convert_module.OCD2_HEADER)
    cuts = sorted({0, 5, header, header + 1, header + 100, len(good) // 2, len(good) - 3,
                   len(good) - 1})
    cases = [good[:n] for n in cuts] + [b"OPENCC_MARISA_0.2.4" + good[header:], good + b"\0\0"]
    # one byte flipped in the value table (after the trie). Not in the trie itself: marisa does
    # not check its own structure and may crash on a corrupt trie -- as OpenCC does, which loads
    # the same file first (OpenCCConverter builds an opencc.OpenCC before reading them).
    import marisa_trie

    trie_end = header + len(marisa_trie.Trie().frombytes(good[header:]).tobytes())
    for k in range(trie_end, len(good), max(1, (len(good) - trie_end) // 60)):
        cases.append(good[:k] + bytes([good[k] ^ 0x5A]) + good[k + 1:])
    errors = 0
    for data in cases:
        bad.write_bytes(data)
        try:
            keys, values = read_ocd2(str(bad))
        except DictionaryError as e:
            assert str(bad) in str(e)
            errors += 1
        else:  # a flip that still reads: a well-formed dictionary (another key or value)
            assert len(keys) == len(values)
    assert errors >= len(cuts) + 2
    # a config whose dictionary is corrupt: the native converter is not built, and says why
    (tmp_path / "A.ocd2").write_bytes(good[:len(good) // 2])
    (tmp_path / "cfg.json").write_text(json.dumps(
        {"conversion_chain": [{"dict": {"type": "ocd2", "file": "A.ocd2"}}]}))
    with pytest.raises(DictionaryError, match=re.escape(str(tmp_path / "A.ocd2"))):
        convert_module._native_converter(str(tmp_path / "cfg.json"))


def test_unsupported_configs_fall_back(tmp_path, monkeypatch):
    """Whatever the native converter does not run is converted by the opencc package, and
    native_reason says why."""
    write_ocd2(tmp_path / "A.ocd2", {"a": ["b"]})
    cases = {
        "text": ({"conversion_chain": [{"dict": {"type": "text", "file": "A.txt"}}]},
                 "dictionary type 'text'"),
        "policy": ({"conversion_chain": [{"dict": {"type": "group", "match_policy": "best",
                                                   "dicts": [_leaf("A")]}}]},
                   "match_policy 'best'"),
        "plugin": ({"segmentation": {"type": "jieba"}, "conversion_chain": []},
                   "segmentation other than mmseg"),
        "missing": ({"conversion_chain": [{"dict": _leaf("Z")}]}, "'Z.ocd2' not found"),
    }
    for name, (config, reason) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(config))
        with pytest.raises(convert_module._Unsupported, match=re.escape(reason)):
            convert_module._native_converter(str(path))
    assert OpenCCConverter("t2s", native=False).native_reason == "native=False"
    monkeypatch.setenv(convert_module.NATIVE_ENV, "0")
    conv = OpenCCConverter("t2s")
    assert not conv.native and conv.native_reason == f"{convert_module.NATIVE_ENV}=0"
    with pytest.raises(ValueError, match="no native converter"):
        conv.convert_mapped(["說"])
    monkeypatch.setattr(convert_module, "NATIVE_OPENCC_VERSIONS", frozenset({"0.0"}))
    monkeypatch.delenv(convert_module.NATIVE_ENV)
    conv = OpenCCConverter("t2s")
    assert not conv.native and "checked against OpenCC 0.0, not" in conv.native_reason
    with pytest.raises(ValueError, match="the native converter cannot run OpenCC 't2s'"):
        OpenCCConverter("t2s", native=True)
    # and the opencc package path gives the same words
    lines = ["這個軟體很好", "乾燥的頭髮"]
    assert (ConvertedSegmenter(MaxMatch(VOCAB), conv).words(lines)
            == ConvertedSegmenter(MaxMatch(VOCAB), OpenCCConverter("t2s")).words(lines))


@pytest.mark.parametrize("config,n", [("t2s", None), ("tw2sp", 40000), ("hk2sp", 20000)])
def test_native_words_equal_the_opencc_path(config, n, corpora, ltp_model):
    """The segmentation does not change: the words through the native converter are those
    through the opencc package, on the corpora (traditional), except on lines where the opencc
    path's alignment (a guess from the outputs) misplaced a phrase that changed length, which
    the native converter knows exactly (tw2sp: 烏茲別克 -> 乌兹别克斯坦 is one dictionary match;
    the alignment took 烏茲別 character by character and 克 -> 克斯坦)."""
    lines = corpora[len(corpora) // 2:][:n] if n else corpora[len(corpora) // 2:]
    ltp = get_segmenter(f"ltp:{ltp_model}")
    conv = OpenCCConverter(config)
    native = ConvertedSegmenter(ltp, conv)
    package = ConvertedSegmenter(ltp, OpenCCConverter(config, native=False))
    a, b = native.segment_batch(lines), package.segment_batch(lines)
    check_spans(lines, a)
    assert native.n_convert_fallback == package.n_convert_fallback == 0
    assert native.n_convert_realigned <= package.n_convert_realigned
    if config == "t2s":  # nothing changes length: the very same words
        assert same_words(a, b) and native.n_convert_realigned == 0
        return
    differ = [i for i in range(len(lines))
              if not np.array_equal(a.starts[a.row_splits[i]:a.row_splits[i + 1]],
                                    b.starts[b.row_splits[i]:b.row_splits[i + 1]])]
    out, _, blocks = conv.convert_mapped([lines[i] for i in differ])
    for k, i in enumerate(differ):
        points = set(conv.alignment(lines[i], out[k]))
        exact = blocks[blocks[:, 0] == k].tolist()
        misplaced = any((x, z) not in points or (y, w) not in points
                        or any(x < p < y for p, _ in points) for _, x, y, z, w in exact)
        assert misplaced, (lines[i], out[k], exact, sorted(points))
    assert len(differ) <= len(lines) // 1000, len(differ)


def test_native_whitespace_moved_falls_back(tmp_path, ltp_model):
    """A dictionary that turns a character into a space (OpenCC's never do): the line is
    segmented unconverted and counted, as on the opencc package path; also on the LTP kernel's
    UTF-8 path (the converted text handed to the kernel without Python strings)."""
    write_ocd2(tmp_path / "W.ocd2", {"的": [" "], "說": ["说"]})
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"conversion_chain": [{"dict": _leaf("W")}]}))
    conv = OpenCCConverter("t2s")
    conv._native = convert_module._native_converter(str(path))
    seg = ConvertedSegmenter(MaxMatch(VOCAB), conv)
    lines = ["我們的", "他說", "的的"]
    out, status, _ = conv.convert_mapped(lines)
    assert out == ["我們 ", "他说", "  "] and status.tolist() == [3, 0, 3]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    assert seg.n_convert_fallback == 2
    ltp = get_segmenter(f"ltp:{ltp_model}")
    assert convert_module._utf8_kernel(ltp) is not None
    seg = ConvertedSegmenter(ltp, conv)
    lines += ["記憶體不夠", "他說的"]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    assert seg.n_convert_fallback == 3
    assert seg.words(lines)[3] == ltp.words(["記憶體不夠"])[0]  # W leaves it as it is
    assert [seg.words(lines)[i] for i in (0, 2, 4)] == [ltp.words([lines[i]])[0]
                                                        for i in (0, 2, 4)]
