"""Segmenters: word spans over the original lines, whatever each segmenter does to whitespace.

Mirrors wwm_fast/segmentation/{_spans,base,ltp,jieba,pre}.py.
"""

from __future__ import annotations

import logging
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wwm_fast.alignment import WordSpans
from wwm_fast.segmentation import Segmenter, get_segmenter
from wwm_fast.segmentation._spans import _WS_LIMIT, spans_from_pieces, spans_to_words

from segmentation_helpers import gold_sentences, ltp_model  # noqa: F401  (fixture)


def check_spans(lines, words: WordSpans):
    """The WordSpans contract: sorted, disjoint, in bounds, no whitespace inside a word, and
    every non-whitespace character in exactly one word."""
    assert words.starts.dtype == np.int32 and words.ends.dtype == np.int32
    assert words.row_splits.dtype == np.int64
    assert len(words.row_splits) == len(lines) + 1 and words.row_splits[0] == 0
    assert words.row_splits[-1] == len(words.starts) == len(words.ends)
    for i, line in enumerate(lines):
        a, b = words.row_splits[i], words.row_splits[i + 1]
        covered = [0] * len(line)
        prev_end = 0
        for s, e in zip(words.starts[a:b].tolist(), words.ends[a:b].tolist()):
            assert prev_end <= s < e <= len(line), (line, s, e)
            assert not any(c.isspace() for c in line[s:e]), (line, line[s:e])
            for k in range(s, e):
                covered[k] += 1
            prev_end = e
        for k, c in enumerate(line):
            assert covered[k] == (0 if c.isspace() else 1), (line, k)


def test_whitespace_table_covers_every_space():
    spaces = [cp for cp in range(0x110000) if chr(cp).isspace()]
    assert max(spaces) <= _WS_LIMIT
    from wwm_fast.segmentation._spans import _WS_TABLE

    assert set(np.flatnonzero(_WS_TABLE).tolist()) == set(spaces)


# Golden table: {lines, pieces, words (per line), unmatched}; each case checked by hand.
SPANS_GOLDEN = [
    # 0: empty batch of one empty line
    dict(lines=[""], pieces=[[]], words=[[]], unmatched=0),
    # 1: pieces rebuild the line exactly
    dict(lines=["迈向充满希望"], pieces=[["迈向", "充满", "希望"]],
         words=[["迈向", "充满", "希望"]], unmatched=0),
    # 2: LTP glues spaces onto words: cut there, spaces belong to no word
    dict(lines=["他叫 汤姆去"], pieces=[["他", "叫 汤", "姆去"]],
         words=[["他", "叫", "汤", "姆去"]], unmatched=0),
    # 3: LTP drops leading spaces and keeps trailing ones
    dict(lines=["  他叫汤姆  "], pieces=[["他", "叫", "汤姆  "]],
         words=[["他", "叫", "汤姆"]], unmatched=0),
    # 4: a line of spaces: LTP returns nothing; no word
    dict(lines=[" \u3000 "], pieces=[[]], words=[[]], unmatched=0),
    # 5: every kind of whitespace splits (U+3000, NBSP, U+2028, tab)
    dict(lines=["\t中国\u3000人民\xa0万岁a\u2028b"], pieces=[["中国\u3000", "人民\xa0万", "岁a\u2028b"]],
         words=[["中国", "人民", "万", "岁a", "b"]], unmatched=0),
    # 6: offsets are code points: astral characters count one
    dict(lines=["😀中国𠀀"], pieces=[["😀", "中国", "𠀀"]], words=[["😀", "中国", "𠀀"]],
         unmatched=0),
    # 7: the batch concatenates but pieces straddle lines: those lines cannot be matched
    dict(lines=["ab", "cd"], pieces=[["a"], ["bcd"]], words=[["a", "b"], ["c", "d"]],
         unmatched=2),
    # 8: a segmenter that changed characters: one word per character, counted
    dict(lines=["中国人", "好"], pieces=[["中華", "人"], ["好"]], words=[["中", "国", "人"], ["好"]],
         unmatched=1),
    # 9: empty pieces are ignored; whitespace-only pieces too
    dict(lines=["a b"], pieces=[["", "a", " ", "b", ""]], words=[["a", "b"]], unmatched=0),
    # 10: control characters are text (the fast path picks separators absent from the text)
    dict(lines=["a\x00b\x01c\x02", "\ufdd0"], pieces=[["a\x00", "b\x01c\x02"], ["\ufdd0"]],
         words=[["a\x00", "b\x01c\x02"], ["\ufdd0"]], unmatched=0),
    # 11: a piece holding a character the line lacks is no match, even a separator candidate
    dict(lines=["ab", ""], pieces=[["a\x00", "b"], []], words=[["a", "b"], []], unmatched=1),
    # 12: an empty line between lines, pieces given for it
    dict(lines=["ab", "", "c"], pieces=[["ab"], [""], ["c"]], words=[["ab"], [], ["c"]],
         unmatched=0),
]


@pytest.mark.parametrize("case", SPANS_GOLDEN, ids=[f"case{i}" for i in range(len(SPANS_GOLDEN))])
def test_spans_golden(case):
    words, unmatched = spans_from_pieces(case["lines"], case["pieces"])
    check_spans(case["lines"], words)
    assert spans_to_words(case["lines"], words) == case["words"]
    assert unmatched == case["unmatched"]


def test_spans_mismatch_callback_may_raise():
    def boom(i, line, pieces):
        raise ValueError(f"line {i}")

    with pytest.raises(ValueError, match="line 1"):
        spans_from_pieces(["ab", "cd"], [["ab"], ["xd"]], on_mismatch=boom)
    with pytest.raises(ValueError, match="2 results for 1 lines"):
        spans_from_pieces(["ab"], [["ab"], []])


_ALPHABET = st.sampled_from(list("中国人民ab1 \u3000\t\xa0😀𠀀，"))


@st.composite
def line_and_pieces(draw):
    line = "".join(draw(st.lists(_ALPHABET, max_size=30)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(line)), max_size=10))))
    bounds = [0] + cuts + [len(line)]
    pieces = [line[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    mode = draw(st.sampled_from(["exact", "drop_ws", "strip_all"]))
    if mode == "drop_ws":  # LTP-like: leading whitespace lost, whitespace-only pieces lost
        pieces = [p for p in pieces if p.strip()]
        if pieces:
            pieces[0] = pieces[0].lstrip()
    elif mode == "strip_all":
        pieces = [p.strip() for p in pieces]
    return line, pieces


@settings(max_examples=300, deadline=None)
@given(st.lists(line_and_pieces(), min_size=1, max_size=6))
def test_spans_properties(batch):
    lines = [x for x, _ in batch]
    pieces = [p for _, p in batch]
    words, unmatched = spans_from_pieces(lines, pieces)
    assert unmatched == 0
    check_spans(lines, words)
    # every word lies inside one piece (the segmenter's boundaries are kept)
    for line, ps, ws in zip(lines, pieces, spans_to_words(lines, words)):
        signature = [w for p in ps for w in p.split()]
        assert ws == signature
    # batch == loop
    for i, line in enumerate(lines):
        one, _ = spans_from_pieces([line], [pieces[i]])
        a, b = words.row_splits[i], words.row_splits[i + 1]
        assert one.starts.tolist() == words.starts[a:b].tolist()
        assert one.ends.tolist() == words.ends[a:b].tolist()


# -- get_segmenter --------------------------------------------------------------------------
@pytest.mark.parametrize("spec, match", [
    ("foo", r"unknown segmenter 'foo'.*'ltp:PATH'.*'jieba'"),
    ("ltp", r"needs a model path"),
    ("ltp:", r"needs a model path"),
    ("ltp-neural:", r"needs a model"),
    ("jieba:fast", r"unknown jieba option 'fast'"),
])
def test_get_segmenter_bad_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        get_segmenter(spec)


def test_get_segmenter_bad_args():
    with pytest.raises(TypeError, match="spec must be a str"):
        get_segmenter(None)
    with pytest.raises(ValueError, match="num_threads must be -1"):
        get_segmenter("pre", num_threads=0)
    seg = get_segmenter("pre")
    with pytest.raises(TypeError, match="sequence of str"):
        seg.segment_batch("一行")
    with pytest.raises(TypeError, match="must all be str"):
        seg.segment_batch([b"bytes"])
    assert isinstance(seg, Segmenter)
    assert seg.segment_batch([]).row_splits.tolist() == [0]


# -- pre-segmented ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec, delimiter", [("pre", " "), ("pre:", " "), ("pre: ", " "),
                                             ("pre:\t", "\t"), ("pre:/", "/"), ("PRE:||", "||")])
def test_pre_spec(spec, delimiter):
    seg = get_segmenter(spec)
    assert seg.delimiter == delimiter
    assert seg.spec == "pre:" + delimiter
    assert get_segmenter(seg.spec).spec == seg.spec


def test_pre_segmented_lines_alone():
    seg = get_segmenter("pre")
    lines = ["迈向 充满  希望 的 新 世纪", "", "  ６ ℃ "]
    assert seg.words(lines) == [["迈向", "充满", "希望", "的", "新", "世纪"], [], ["６", "℃"]]
    check_spans(lines, seg.segment_batch(lines))
    with pytest.raises(ValueError, match="not whitespace"):
        get_segmenter("pre:/").segment_batch(["a/b"])


def test_pre_with_raw_lines():
    seg = get_segmenter("pre:/")
    raw = ["iPhone 6很好", "迈向充满希望", ""]
    segd = ["iPhone 6/很/好", "迈向/充满//希望", ""]
    words = seg.segment_batch(raw, segmented=segd)
    check_spans(raw, words)
    assert spans_to_words(raw, words) == [["iPhone", "6", "很", "好"], ["迈向", "充满", "希望"], []]


def test_pre_words_must_rebuild_the_line():
    seg = get_segmenter("pre")
    with pytest.raises(ValueError, match=r"seg\.txt: line 42: .*do not rebuild line 42 of "
                                         r"raw\.txt.*'iPhone6很坏'.*'iPhone6很好'"):
        seg.segment_batch(["x", "iPhone 6很好"], segmented=["x", "iPhone 6 很 坏"],
                          source="raw.txt", segmented_source="seg.txt", line_offset=40)
    with pytest.raises(ValueError, match="has 1 lines but raw.txt has 2"):
        seg.segment_batch(["a", "b"], segmented=["a"], source="raw.txt",
                          segmented_source="seg.txt")


def test_pre_gold_people_daily():
    gold = gold_sentences()[:2000]
    raw = [g.replace(" ", "") for g in gold]
    seg = get_segmenter("pre")
    words = seg.segment_batch(raw, segmented=gold)
    check_spans(raw, words)
    assert spans_to_words(raw, words) == [g.split(" ") for g in gold]


# -- jieba --------------------------------------------------------------------------------------
def test_jieba_private_tokenizer_and_quiet(capfd, caplog):
    jieba = pytest.importorskip("jieba")
    was_initialized = jieba.dt.initialized
    with caplog.at_level(logging.DEBUG):
        seg = get_segmenter("jieba")
    captured = capfd.readouterr()
    assert "prefix dict" not in captured.err + captured.out
    assert not [r for r in caplog.records if r.name == "jieba"]
    assert jieba.dt.initialized == was_initialized  # jieba's global tokenizer untouched
    assert seg.spec == f"jieba:hmm@{jieba.__version__}"
    assert get_segmenter("jieba:nohmm").spec == f"jieba:nohmm@{jieba.__version__}"
    assert get_segmenter(seg.spec).spec == seg.spec


def test_jieba_words_and_spaces():
    pytest.importorskip("jieba")
    seg = get_segmenter("jieba")
    lines = ["他叫汤姆去拿外衣。", "  iPhone 6s 很好 ,\t非常 好", " ", ""]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    got = spans_to_words(lines, words)
    assert got[0] == ["他", "叫", "汤姆", "去", "拿", "外衣", "。"]
    assert got[1] == ["iPhone", "6s", "很", "好", ",", "非常", "好"]
    assert got[2:] == [[], []]
    assert seg.n_unmatched == 0


def test_jieba_full_width_like_ascii():
    """jieba cuts full-width digits one by one; WordPiece keeps them together (１９ ##９８), so
    the aligner would drop the whole line: they are segmented like their ASCII twins."""
    pytest.importorskip("jieba")
    seg = get_segmenter("jieba")
    assert seg.segment("１９９８年ＡＢＣ公司") == ["１９９８", "年", "ＡＢＣ", "公司"]
    assert seg.segment("1998年ABC公司") == ["1998", "年", "ABC", "公司"]


def test_jieba_batch_equals_loop():
    pytest.importorskip("jieba")
    seg = get_segmenter("jieba")
    raw = [g.replace(" ", "") for g in gold_sentences()[:300]]
    batch = seg.words(raw)
    assert batch == [seg.segment(x) for x in raw]


def test_jieba_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)
    with pytest.raises(ValueError, match=r"jieba.*not installed.*wwm-fast\[jieba\]"):
        get_segmenter("jieba")


# -- LTP legacy ---------------------------------------------------------------------------------
def test_ltp_pitfalls(ltp_model):
    seg = get_segmenter(f"ltp:{ltp_model}")
    lines = ["  他叫汤姆去拿外衣。  ", "他叫 汤姆去拿外衣。", "   ", "\u3000", "", "中国 abc def",
             "😀中国𠀀😀", "a\u2028b"]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    got = spans_to_words(lines, words)
    assert got[2:5] == [[], [], []]
    assert "".join(got[0]) == "他叫汤姆去拿外衣。"
    assert seg.n_unmatched == 0


def test_ltp_spec_and_fingerprint(ltp_model, tmp_path):
    from wwm_fast.segmentation.base import sha256_file

    seg = get_segmenter(f"ltp:{ltp_model}")
    digest = sha256_file(ltp_model)[:12]
    assert seg.spec == f"ltp-legacy:{ltp_model}#{digest}"
    assert get_segmenter(seg.spec).spec == seg.spec
    copy = tmp_path / "model.bin"
    data = Path(ltp_model).read_bytes()
    copy.write_bytes(data)
    assert get_segmenter(f"ltp-legacy:{copy}#{digest}").spec.endswith(digest)
    with pytest.raises(ValueError, match="has changed since it was recorded"):
        get_segmenter(f"ltp-legacy:{copy}#000000000000")


def test_ltp_hub_folder(ltp_model, tmp_path):
    import json
    import shutil

    folder = tmp_path / "legacy"
    folder.mkdir()
    shutil.copy(ltp_model, folder / "cws_model.bin")
    # a bare folder with cws_model.bin
    assert get_segmenter(f"ltp:{folder}").model_file == str(folder / "cws_model.bin")
    # LTP's hub layout: config.json names the model files ("nerual" is LTP's spelling)
    (folder / "config.json").write_text(json.dumps(
        {"nerual": False, "tasks": {"cws": "cws_model.bin", "pos": "pos_model.bin"}}))
    seg = get_segmenter(f"ltp:{folder}")
    assert seg.model_file == str(folder / "cws_model.bin")
    assert seg.segment("他叫汤姆去拿外衣。")
    (folder / "config.json").write_text(json.dumps({"nerual": True}))
    with pytest.raises(ValueError, match="neural model.*ltp-neural:"):
        get_segmenter(f"ltp:{folder}")
    (folder / "config.json").write_text(json.dumps({"tasks": {"cws": "missing.bin"}}))
    with pytest.raises(ValueError, match="'missing.bin' named in config.json is missing"):
        get_segmenter(f"ltp:{folder}")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read config.json"):
        get_segmenter(f"ltp:{folder}")


def test_ltp_bad_model_files(ltp_model, tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(ValueError, match=r"LTP model not found: .*nope\.bin.*never downloads"):
        get_segmenter(f"ltp:{missing}")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.bin.*not a valid LTP legacy model.*empty"):
        get_segmenter(f"ltp:{empty}")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a model\n" * 100)
    with pytest.raises(ValueError, match=r"garbage\.bin.*not a valid.*wrong magic"):
        get_segmenter(f"ltp:{garbage}")
    data = Path(ltp_model).read_bytes()
    # ltp-extension itself aborts the process on these; we must refuse them first
    for name, blob in [("truncated.bin", data[:len(data) // 2]),
                       ("header_only.bin", data[:400]),
                       ("no_sync.bin", data[:-1])]:
        bad = tmp_path / name
        bad.write_bytes(blob)
        with pytest.raises(ValueError, match=name.replace(".", r"\.") + ".*not a valid"):
            get_segmenter(f"ltp:{bad}")
    # A flipped byte inside a deflate block: deflate has no checksum, so such a file either cannot
    # be decoded (the native reader refuses it at first use, naming the file) or decodes to a
    # model with one changed value. Either way nothing crashes: a refused file is named, and a
    # model that loads segments every line into words that rebuild it. The byte at a given offset
    # depends on the trained model (its hash ordering varies), so nine offsets are tried, and at
    # least one of them must be refused.
    lines = [g.replace(" ", "") for g in gold_sentences()[3000:3050]]
    outcomes = []
    for k in range(1, 10):
        flipped = bytearray(data)
        flipped[len(data) * k // 10] ^= 0xFF
        bad = tmp_path / f"flipped{k}.bin"
        bad.write_bytes(bytes(flipped))
        try:  # the native kernel reads the model at its first use
            words = get_segmenter(f"ltp:{bad}").words(lines)
        except ValueError as e:
            assert re.search(rf"flipped{k}\.bin.*(is corrupt|not a valid)", str(e)), str(e)
            outcomes.append("refused")
            continue
        assert ["".join(w) for w in words] == lines
        outcomes.append("loaded")
    assert "refused" in outcomes, outcomes


def test_ltp_rust_check_refuses_hostile_headers(tmp_path):
    """The ltp-rust check (``check_model_file``, run before ltp-extension sees a file) reads the
    Avro container with the native segmenter's reader: a negative length in the header is
    refused at once. (Its own reader stepped back by it and looped for the header's 2^40
    entries, or hit an IndexError.)"""
    from wwm_fast.segmentation.ltp import check_model_file

    def zigzag(v):
        z, out = (v << 1) ^ (v >> 63), b""
        while z >= 0x80:
            out += bytes([z & 0x7F | 0x80])
            z >>= 7
        return out + bytes([z])

    for name, blob in [("back.bin", b"Obj\x01" + zigzag(1 << 40) + zigzag(-1) * 4),
                       ("far_back.bin", b"Obj\x01" + zigzag(1) + zigzag(-100) + b"\x00" * 40)]:
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=name.replace(".", r"\.") + r".*not a valid LTP legacy "
                           r"model \(the header runs past the end of the file"):
            check_model_file(str(path))


def test_ltp_threads_and_batch_equal_loop(ltp_model):
    one = get_segmenter(f"ltp:{ltp_model}", num_threads=1)
    two = get_segmenter(f"ltp:{ltp_model}", num_threads=2)
    raw = [g.replace(" ", "") for g in gold_sentences()[3000:3400]] + ["", "  a b  "]
    w1, w2 = one.segment_batch(raw), two.segment_batch(raw)
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)
    assert one.words(raw) == [one.segment(x) for x in raw]


def test_ltp_not_installed(monkeypatch, ltp_model):
    monkeypatch.setitem(sys.modules, "ltp_extension", None)
    monkeypatch.setitem(sys.modules, "ltp_extension.perceptron", None)
    with pytest.raises(ValueError, match=r"ltp-extension.*not installed.*wwm-fast\[ltp\]"):
        get_segmenter(f"ltp-rust:{ltp_model}")
    assert get_segmenter(f"ltp:{ltp_model}").segment("中国")  # native: needs no ltp-extension


# -- LTP neural -------------------------------------------------------------------------------
def test_ltp_neural_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "ltp", None)
    with pytest.raises(ValueError, match=r"ltp-neural.*not installed.*wwm-fast\[ltp-neural\]"):
        get_segmenter("ltp-neural:LTP/tiny")


class _FakeLTP:
    """Stands in for ltp.LTP: cuts every 2 characters and glues spaces like LTP does."""

    calls: list = []

    def __init__(self, name):
        if name == "LTP/missing":
            raise OSError("We couldn't connect to the hub")
        self.name = name

    def pipeline(self, texts, tasks):
        assert tasks == ["cws"]
        _FakeLTP.calls.append(list(texts))
        out = []
        for t in texts:
            t = t.lstrip()
            out.append([t[i:i + 2] for i in range(0, len(t), 2)])
        return types.SimpleNamespace(cws=out)


def test_ltp_neural_with_fake_package(monkeypatch, tmp_path):
    fake = types.ModuleType("ltp")
    fake.LTP = _FakeLTP
    monkeypatch.setitem(sys.modules, "ltp", fake)
    monkeypatch.setitem(sys.modules, "torch", None)
    _FakeLTP.calls.clear()
    seg = get_segmenter("ltp-neural:LTP/tiny")
    assert seg.spec == "ltp-neural:LTP/tiny"
    seg.max_chars = 5
    seg.batch_size = 2
    lines = ["中国人民万岁万万岁", "", "   ", " 他叫 汤姆"]
    words = seg.segment_batch(lines)
    check_spans(lines, words)
    assert spans_to_words(lines, words)[0] == ["中国", "人民", "万", "岁万", "万岁"]
    sent = [t for call in _FakeLTP.calls for t in call]
    assert sent == ["中国人民万", "岁万万岁", " 他叫 汤", "姆"]  # blank lines never sent
    assert all(len(call) <= 2 for call in _FakeLTP.calls)
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    local = get_segmenter(f"ltp-neural:{folder}")
    assert local.spec.startswith(f"ltp-neural:{folder}#")
    assert get_segmenter(local.spec).spec == local.spec
    with pytest.raises(ValueError, match="has changed"):
        get_segmenter(f"ltp-neural:{folder}#000000000000")
    with pytest.raises(ValueError, match="cannot load the neural LTP model 'LTP/missing'"):
        get_segmenter("ltp-neural:LTP/missing")


def test_ltp_neural_real_model():
    import os

    pytest.importorskip("ltp")
    path = os.environ.get("WWM_FAST_LTP_NEURAL_MODEL")
    if not path:
        pytest.skip("set WWM_FAST_LTP_NEURAL_MODEL to a local neural LTP model folder")
    seg = get_segmenter(f"ltp-neural:{path}")
    lines = ["他叫汤姆去拿外衣。", "  中国 人民  ", ""]
    check_spans(lines, seg.segment_batch(lines))
