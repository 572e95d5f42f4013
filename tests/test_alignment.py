"""align_words: positional whole-word flags on hand-checked lines, on the gold segmentation of the
whole People's Daily file (beside BERT_DATA_SPEC §5.5's figures), and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wwm_fast
from wwm_fast import WordSpans, align_words
from wwm_fast._cjk import is_cjk


@pytest.fixture(scope="module")
def tok(vocab_file):
    return wwm_fast.FullTokenizer(vocab_file)


def spans(lines, segmented):
    """WordSpans of lines from their space-separated words (test helper, independent of the
    segmentation package)."""
    starts, ends, splits = [], [], [0]
    for line, seg in zip(lines, segmented):
        pos = 0
        for w in seg.split():
            i = line.index(w, pos)
            starts.append(i)
            ends.append(i + len(w))
            pos = i + len(w)
        splits.append(len(starts))
    return WordSpans(np.array(starts, np.int32), np.array(ends, np.int32),
                     np.array(splits, np.int64))


def flags(tok, line, seg):
    enc = tok.encode_batch([line])
    res = align_words(enc, spans([line], [seg]), tok.is_subword(enc.ids))
    return tok.convert_ids_to_tokens(enc.ids), res.word_start.tolist(), int(res.fallback[0])


# Hand-checked lines: (line, gold words, tokens, word_start, fell back)
CASES = [
    # 0: Chinese words: continuation inside each word
    ("中华人民共和国", "中华 人民 共和国", ["中", "华", "人", "民", "共", "和", "国"],
     [1, 0, 1, 0, 1, 0, 0], 0),
    # 1: [UNK] inside a word stays in the word (BERT_DATA_SPEC §5.5 (b); HF's set rule cannot)
    ("鳜鱼很好", "鳜鱼 很 好", ["[UNK]", "鱼", "很", "好"], [1, 0, 1, 1], 0),
    # 2: a word mixing digits and a CJK char: 年 joins ２０００ (the CJK-only rule would not)
    ("２０００年", "２０００年", ["２０", "##００", "年"], [1, 0, 0], 0),
    # 3: punctuation inside a gold word joins it (PKU keeps decimals as one word)
    ("１．５亿", "１．５亿", ["１", "．", "５", "亿"], [1, 0, 0, 0], 0),
    # 4: a WordPiece word split by the segmenter (６ ##℃ vs ６ / ℃): the line falls back to
    #    ##-only grouping (HFL), so 摄 氏 lose their word too
    ("摄氏６℃", "摄氏 ６ ℃", ["摄", "氏", "６", "##℃"], [1, 1, 1, 0], 1),
    # 5: positional, not set-based: 三愿 is a word elsewhere in the line, but here 三 / 愿 are two
    #    words, so 愿 does not join (HF's set rule marks it, §5.5 (a))
    ("三愿三愿", "三愿 三 愿", ["三", "愿", "三", "愿"], [1, 0, 1, 1], 0),
    # 6: spaces belong to no word; Latin WordPiece pieces still join with ##
    ("unaffable 中国", "unaffable 中国", ["u", "##na", "##ff", "##able", "中", "国"],
     [1, 0, 0, 0, 1, 0], 0),
    # 7: two non-CJK [UNK]s inside one gold word (—— is one PKU word) form one group
    ("——好", "—— 好", ["[UNK]", "[UNK]", "好"], [1, 0, 1], 0),
    # 8: an empty line
    ("", "", [], [], 0),
]


@pytest.mark.parametrize("line,seg,tokens,expected,fallback", CASES,
                         ids=[f"{i}:{c[0][:8]}" for i, c in enumerate(CASES)])
def test_hand_checked_lines(tok, line, seg, tokens, expected, fallback):
    got_tokens, got, fell_back = flags(tok, line, seg)
    assert got_tokens == tokens
    assert got == expected
    assert fell_back == fallback


def _is_cjk(c):
    return is_cjk(ord(c))  # Google's _is_chinese_char (wwm_fast/_cjk.py, checked in test_refs.py)


def test_gold_people_daily_beside_the_spec(tok, people_daily_lines, people_daily_seg_lines):
    """The whole gold file: counts, and where they differ from §5.5's, why.

    §5.5 (HF set rule 667,263 CJK marks; CJK-only positional 664,038; 288 lines that cannot be
    aligned). Our rule also joins non-CJK tokens inside a word (cases 2-3 above) and keeps
    WordPiece ## pieces, so our continuations are the sum printed below.
    """
    raw, seg = people_daily_lines, people_daily_seg_lines
    enc = tok.encode_batch(raw)
    sub = tok.is_subword(enc.ids)
    res = align_words(enc, spans(raw, seg), sub)
    # Lines that fall back are exactly those whose words, tokenized one by one, do not give the
    # line's tokens (a segmenter boundary inside a WordPiece word, case 4).
    mismatched = {i for i, (r, s) in enumerate(zip(raw, seg))
                  if [t for w in s.split() for t in tok.tokenize(w)] != tok.tokenize(r)}
    assert set(np.flatnonzero(res.fallback).tolist()) == mismatched
    assert res.n_fallback == 199  # §5.5 reports 288 for its own procedure
    # Decomposition of our continuations.
    cont = res.word_start == 0
    assert int(sub.sum()) == 22_391  # WordPiece ## pieces (always join)
    cjk_positional = sum(len(tok.tokenize(w)) - 1 for s in seg for w in s.split()
                         if len(w) > 1 and all(map(_is_cjk, w)))
    in_fallback = sum(len(tok.tokenize(w)) - 1 for i in mismatched for w in seg[i].split()
                      if len(w) > 1 and all(map(_is_cjk, w)))
    assert (cjk_positional, in_fallback) == (667_459, 734)
    assert int(cont.sum()) == 710_958
    # = 22,391 ## + 666,725 CJK chars of all-CJK words (= 667,459 - 734 in fallback lines)
    #   + 21,842 other tokens inside words (CJK in mixed words as 年 in ２０００年, digits and
    #   punctuation as in １．５, [UNK] as in ——)
    assert int(cont.sum()) - int(sub.sum()) - (cjk_positional - in_fallback) == 21_842
    # Whole-word group sizes (groups restart at every line)
    starts = np.flatnonzero(res.word_start)
    sizes = np.diff(np.append(starts, len(res.word_start)))
    hist = np.bincount(np.minimum(sizes, 6))[1:].tolist()
    assert hist == [532_322, 508_567, 53_403, 21_334, 5_723, 1_411]
    # §5.5 (HF rule): 556,093 / 502,521 / 50,655 / 22,542 / 2,394 / 597 -- ours has fewer
    # singletons and more long groups because digits, Latin and punctuation join their words.


# -- properties -----------------------------------------------------------------------------------------

alphabet = st.sampled_from(list("中国人民共和一九八年ab１２．，“") + ["鳜", "℃"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet, min_size=1, max_size=4), st.booleans(),
                          st.booleans()), min_size=0, max_size=12))
def test_properties_on_random_segmentations(tok, parts):
    """Random lines cut into words at random places: the invariants hold for any segmentation.

    Each part is (text, followed by a space, merged with the next part into one word).
    """
    line, starts, ends = "", [], []
    merge_next = False
    for text, space, merge in parts:
        if merge_next:
            ends[-1] = len(line) + len(text)
        else:
            starts.append(len(line))
            ends.append(len(line) + len(text))
        line += text + (" " if space else "")
        merge_next = merge and not space
    ws = WordSpans(np.array(starts, np.int32), np.array(ends, np.int32),
                   np.array([0, len(starts)], np.int64))
    enc = tok.encode_batch([line])
    sub = tok.is_subword(enc.ids)
    res = align_words(enc, ws, sub)
    f = res.word_start
    if len(f):
        assert f[0] == 1  # every group starts at a non-continuation
    assert not (f[sub == 1]).any()  # ## always joins
    if res.fallback[0]:
        np.testing.assert_array_equal(f, 1 - sub)
    else:  # a token joins iff it shares a word with the previous token
        word_of = np.searchsorted(ws.ends, enc.ends, side="left")
        joins = np.zeros(len(f), bool)
        joins[1:] = word_of[1:] == word_of[:-1]
        np.testing.assert_array_equal(f == 0, joins | (sub == 1))


def test_batch_equals_loop_and_threads_agree(tok, people_daily_lines, people_daily_seg_lines):
    raw, seg = people_daily_lines[:4000], people_daily_seg_lines[:4000]
    enc = tok.encode_batch(raw)
    ws = spans(raw, seg)
    sub = tok.is_subword(enc.ids)
    one = align_words(enc, ws, sub, num_threads=1)
    two = align_words(enc, ws, sub, num_threads=2)
    np.testing.assert_array_equal(one.word_start, two.word_start)
    np.testing.assert_array_equal(one.fallback, two.fallback)
    for i in range(0, 4000, 37):
        lo, hi = enc.row_splits[i], enc.row_splits[i + 1]
        single = align_words(tok.encode_batch([raw[i]]), spans([raw[i]], [seg[i]]), sub[lo:hi])
        np.testing.assert_array_equal(single.word_start, one.word_start[lo:hi])


def test_million_token_line(tok):
    line = "中华人民共和国" * 150_000
    enc = tok.encode_batch([line])
    n = len(line)
    ws = WordSpans(np.arange(0, n, 7, dtype=np.int32), np.arange(7, n + 1, 7, dtype=np.int32),
                   np.array([0, n // 7], np.int64))
    res = align_words(enc, ws, tok.is_subword(enc.ids), num_threads=2)
    assert len(res.word_start) == 1_050_000 and res.word_start.sum() == 150_000


def test_bad_word_spans(tok):
    enc = tok.encode_batch(["中国人", "好"])
    sub = tok.is_subword(enc.ids)
    overlapping = WordSpans(np.array([0, 1, 0], np.int32), np.array([2, 3, 1], np.int32),
                            np.array([0, 2, 3], np.int64))
    with pytest.raises(ValueError, match=r"line 0 must be non-empty, sorted and non-overlapping; "
                                         r"word 1 is \[1, 3\)"):
        align_words(enc, overlapping, sub)
    with pytest.raises(ValueError, match="words cover 1 lines but the encoding has 2"):
        align_words(enc, WordSpans(np.array([0], np.int32), np.array([3], np.int32),
                                   np.array([0, 1], np.int64)), sub)
    with pytest.raises(ValueError, match="is_subword must have length 4"):
        align_words(enc, WordSpans(np.zeros(0, np.int32), np.zeros(0, np.int32),
                                   np.zeros(3, np.int64)), sub[:2])
