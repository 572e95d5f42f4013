"""``wwm-fast refs`` == HuggingFace run_chinese_ref.py's rule (BERT_DATA_SPEC §5.2).

The oracle (segmentation_helpers.hf_ref_ids) is the published rule written out token by token;
the implementation (wwm_fast/segmentation/refs.py) matches runs of CJK tokens as strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wwm_fast import FullTokenizer
from wwm_fast.cli import main as cli_main
from wwm_fast.files import decode_lines, read_bytes
from wwm_fast.segmentation import chinese_ref_ids, get_segmenter, segment_files
from wwm_fast.segmentation._spans import spans_from_pieces

from segmentation_helpers import hf_ref_ids, people_daily_paths, write_lines

FIRST_LINE_REFS = [2, 4, 6, 10, 14, 15, 16, 17, 19, 21, 25]  # §5.5


def test_cjk_ranges_are_googles():
    """wwm_fast/_cjk.py (the project's one copy of the ranges, used by refs and the oracles) ==
    Google's BasicTokenizer._is_chinese_char on every code point."""
    tokenization = pytest.importorskip("bert.tokenization")
    from wwm_fast._cjk import is_cjk

    google = tokenization.BasicTokenizer(do_lower_case=True)._is_chinese_char
    differ = [cp for cp in range(0x110000) if is_cjk(cp) != google(cp)]
    assert differ == []


@pytest.fixture(scope="module")
def tok(vocab_file):
    return FullTokenizer(vocab_file)


@pytest.fixture(scope="module")
def people_daily():
    """(raw lines, gold WordSpans) of the whole People's Daily file."""
    raw_path, seg_path = people_daily_paths()
    raw = decode_lines(read_bytes(raw_path))
    gold = decode_lines(read_bytes(seg_path))
    words = get_segmenter("pre").segment_batch(raw, segmented=gold)
    return raw, gold, words


def refs_of(tok, line, words, **kw):
    spans, _ = spans_from_pieces([line], [words])
    return chinese_ref_ids(tok, [line], spans, **kw)[0]


# Golden table: {line, words, refs}; hand-checked ([CLS] = 0), each also against the oracle.
REFS_GOLDEN = [
    # 0: empty line
    dict(line="", words=[], refs=[]),
    # 1: plain words; single-character words never join
    dict(line="迈向充满希望的新世纪", words=["迈向", "充满", "希望", "的", "新", "世纪"],
         refs=[2, 4, 6, 10]),
    # 2: set-based, not positional: 三愿 is a word elsewhere in the line, so both occurrences join
    dict(line="三愿：三愿", words=["三愿", "：", "三", "愿"], refs=[2, 5]),
    # 3: ... and the longest set member wins left to right (自然村 over 自然 + 村落)
    dict(line="自然村，自然村落", words=["自然村", "，", "自然", "村落"], refs=[2, 3, 6, 7]),
    # 4: [UNK] inside a word: HF cannot join it (the joined string is not in the set)
    dict(line="鳜鱼", words=["鳜鱼"], refs=[]),
    # 5: words with non-CJK characters never enter the set; WordPiece ## pieces are not refs
    dict(line="unaffable中国Ｘ光", words=["unaffable", "中国", "Ｘ光"], refs=[6]),  # u ##na ##ff ##able
    # 6: forward maximum matching: 中国人 (a word elsewhere) wins over 中国 + 人民
    dict(line="中国人，中国人民", words=["中国人", "，", "中国", "人民"], refs=[2, 3, 6, 7]),
    # 7: whitespace: words never contain it, tokens skip it
    dict(line=" 中国  人民 ", words=["中国", "人民"], refs=[2, 4]),
]


@pytest.mark.parametrize("case", REFS_GOLDEN, ids=[f"case{i}" for i in range(len(REFS_GOLDEN))])
def test_refs_golden(tok, case):
    got = refs_of(tok, case["line"], case["words"])
    assert got == case["refs"]
    assert hf_ref_ids(tok.tokenize(case["line"]), case["words"]) == case["refs"]


def test_truncation_like_hf(tok):
    line = "中国" * 300  # 600 tokens: HF keeps 510 (max_length 512 with [CLS] and [SEP])
    full = refs_of(tok, line, ["中国"] * 300, max_seq_length=0)
    cut = refs_of(tok, line, ["中国"] * 300)
    assert full == list(range(2, 601, 2))
    assert cut == list(range(2, 511, 2)) == [r for r in full if r <= 510]
    assert cut == hf_ref_ids(tok.tokenize(line), ["中国"], max_length=512)
    odd = refs_of(tok, "一" + line, ["一"] + ["中国"] * 300)  # a word cut by the limit
    assert odd[-1] == 509 and 511 not in odd
    with pytest.raises(ValueError, match="max_seq_length must be 0"):
        refs_of(tok, line, ["中国"], max_seq_length=2)


def test_first_line_of_people_daily(tok, people_daily):
    raw, gold, words = people_daily
    assert raw[0] == "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
    refs = chinese_ref_ids(tok, raw[:1], type(words)(words.starts, words.ends,
                                                       words.row_splits[:2]))
    assert refs[0] == FIRST_LINE_REFS


def test_people_daily_equals_oracle(tok, people_daily):
    """Every line of the first 4,000 (the whole file: test_people_daily_whole_file, slow)."""
    raw, gold, words = people_daily
    n = 4000
    sub = type(words)(words.starts, words.ends, words.row_splits[:n + 1])
    got = chinese_ref_ids(tok, raw[:n], sub, max_seq_length=0)
    for i in range(n):
        assert got[i] == hf_ref_ids(tok.tokenize(raw[i]), gold[i].split()), i


def test_people_daily_count(tok, people_daily):
    """§5.5: the HF rule marks 667,263 tokens on the gold segmentation (no truncation)."""
    raw, gold, words = people_daily
    refs = chinese_ref_ids(tok, raw, words, max_seq_length=0)
    assert sum(map(len, refs)) == 667_263
    # HF's max_length=512 cut bites on the few lines over 510 tokens
    sizes = np.diff(tok.encode_batch(raw).row_splits)
    long = np.flatnonzero(sizes > 510).tolist()
    assert 0 < len(long) < 100
    for i in long:
        one = type(words)(words.starts, words.ends, words.row_splits[i:i + 2])
        cut = chinese_ref_ids(tok, [raw[i]], one)[0]
        assert cut == hf_ref_ids(tok.tokenize(raw[i]), gold[i].split(), max_length=512)
        assert cut != refs[i] and max(cut) <= 510


@pytest.mark.slow
def test_people_daily_whole_file(vocab_file, people_daily):
    """Every line of People's Daily, oracle fed by Google's own tokenizer (bert-tensorflow)."""
    from reference import google_tokenizer

    google = google_tokenizer(vocab_file)
    tok = FullTokenizer(vocab_file)
    raw, gold, words = people_daily
    got = chinese_ref_ids(tok, raw, words)
    for i, line in enumerate(raw):
        assert got[i] == hf_ref_ids(google.tokenize(line), gold[i].split(), max_length=512), i


# -- the command ---------------------------------------------------------------------------------
def run_refs(capsys, *argv):
    code = cli_main(["refs", *argv])
    return code, capsys.readouterr().err


def read_refs(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_cli_refs_people_daily(vocab_file, tmp_path, capsys):
    raw, seg = people_daily_paths()
    out = tmp_path / "ref.txt"
    code, err = run_refs(capsys, "--input_file", raw, "--segmented_file", seg, "--segmenter", "pre",
                         "--vocab_file", vocab_file, "--output_file", str(out))
    assert code == 0, err
    refs = read_refs(out)
    assert len(refs) == 44_726  # blank lines dropped, like run_chinese_ref.py
    assert refs[0] == FIRST_LINE_REFS
    first = out.read_text().splitlines()[0]
    assert first == "[2, 4, 6, 10, 14, 15, 16, 17, 19, 21, 25]"  # json.dumps, as HF writes it


def test_cli_refs_blank_lines_and_caches(vocab_file, tmp_path, capsys):
    lines = ["迈向充满希望的新世纪", "", "   ", "中国人民"]
    src = write_lines(tmp_path / "a.txt", lines)
    seg = write_lines(tmp_path / "a.seg.txt", ["迈向 充满 希望 的 新 世纪", "", "   ", "中国 人民"])
    common = ["--vocab_file", vocab_file, "--segmenter", "pre", "--segmented_file", seg,
              "--input_file", src]
    assert run_refs(capsys, *common, "--output_file", str(tmp_path / "drop.txt"))[0] == 0
    assert read_refs(tmp_path / "drop.txt") == [[2, 4, 6, 10], [2, 4]]
    assert run_refs(capsys, *common, "--output_file", str(tmp_path / "keep.txt"),
                    "--blank_lines", "keep")[0] == 0
    assert read_refs(tmp_path / "keep.txt") == [[2, 4, 6, 10], [], [], [2, 4]]
    # a segmentation cache gives the same refs, without a segmenter
    segment_files(src, "pre", str(tmp_path / "cache"), segmented_files=seg, progress=False)
    code, err = run_refs(capsys, "--vocab_file", vocab_file, "--input_file",
                         str(tmp_path / "cache" / "a.txt.wwmseg"), "--output_file",
                         str(tmp_path / "cached.txt"))
    assert code == 0, err
    assert read_refs(tmp_path / "cached.txt") == [[2, 4, 6, 10], [2, 4]]


def test_cli_refs_errors(vocab_file, tmp_path, capsys):
    src = write_lines(tmp_path / "a.txt", ["中国人民"])
    out = tmp_path / "out.txt"
    code, err = run_refs(capsys, "--vocab_file", vocab_file, "--input_file", src,
                         "--output_file", str(out))
    assert code == 2 and "text inputs need --segmenter" in err
    bad = write_lines(tmp_path / "bad.txt", ["中国 民"])
    code, err = run_refs(capsys, "--vocab_file", vocab_file, "--input_file", src, "--segmenter",
                         "pre", "--segmented_file", bad, "--output_file", str(out))
    assert code == 2 and "bad.txt: line 1: the pre-segmented words do not rebuild" in err
    assert not out.exists() and not list(tmp_path.glob(".out.txt*"))


def test_refs_with_a_real_segmenter(tok):
    """jieba words: refs equal the oracle fed with the same words."""
    pytest.importorskip("jieba")
    seg = get_segmenter("jieba")
    raw, _ = people_daily_paths()
    lines = decode_lines(read_bytes(raw))[:500]
    words = seg.segment_batch(lines)
    got = chinese_ref_ids(tok, lines, words)
    by_line = seg.words(lines)
    for i, line in enumerate(lines):
        assert got[i] == hf_ref_ids(tok.tokenize(line), by_line[i], max_length=512)
    assert np.mean([len(r) > 0 for r in got]) > 0.5
