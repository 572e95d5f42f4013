"""wwm_fast.FullTokenizer == Google's bert/tokenization.py, on hand-checked, real and adversarial text."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wwm_fast
from wwm_fast import _wordpiece
from wwm_fast.tokenization import load_vocab

from reference import google_ids, google_tokenizer

# A tiny vocab whose ids are easy to check by hand. Line 22/23 hold U+2028 (as the Chinese vocab's
# lines 344/13503 do): .strip() turns them into the keys "" and "##".
TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "un", "##aff", "##able", "中", "国",  # 5-9
    ",", "hello", "##,", "a", "##b",  # 10-14
    "α", "##ς", "##σ", "e", "\u1112",  # 15-19   (U+1112 HANGUL CHOSEONG HIEUH)
    "##\u1161", "##\u11ab", "\u2028", "##\u2028", "２０",  # 20-24
    "！", "豈", "##a", "[", "]",  # 25-29   (豈 = U+8C48)
]


@pytest.fixture(scope="module")
def tiny_vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_bytes("\n".join(TINY_VOCAB).encode("utf-8") + b"\n")
    return str(path)


# Golden table: {text, lower, tokens, ids, starts, ends}; each case checked by hand and against
# Google's implementation (test_golden_matches_google).
GOLDEN = [
    # 0: empty input
    dict(text="", lower=True, tokens=[], ids=[], starts=[], ends=[]),
    # 1: only whitespace (tab, ideographic space U+3000 is Zs, newline)
    dict(text=" \t\u3000\n", lower=True, tokens=[], ids=[], starts=[], ends=[]),
    # 2: the WordPiece example of Google's docstring
    dict(text="unaffable", lower=True, tokens=["un", "##aff", "##able"], ids=[5, 6, 7],
         starts=[0, 2, 5], ends=[2, 5, 9]),
    # 3: lower-casing keeps offsets into the original text
    dict(text="UNaffABLE", lower=True, tokens=["un", "##aff", "##able"], ids=[5, 6, 7],
         starts=[0, 2, 5], ends=[2, 5, 9]),
    # 4: without lower-casing the upper-case word is not in the vocab: one [UNK] for the word
    dict(text="UNaffABLE", lower=False, tokens=["[UNK]"], ids=[1], starts=[0], ends=[9]),
    # 5: CJK characters are isolated, each its own token
    dict(text="中国", lower=True, tokens=["中", "国"], ids=[8, 9], starts=[0, 1], ends=[1, 2]),
    # 6: punctuation splits a word; CJK split from Latin
    dict(text="hello,中", lower=True, tokens=["hello", ",", "中"], ids=[11, 10, 8],
         starts=[0, 5, 6], ends=[5, 6, 7]),
    # 7: a word with no matching prefix becomes one [UNK] spanning the word
    dict(text="xyz unaffable", lower=True, tokens=["[UNK]", "un", "##aff", "##able"],
         ids=[1, 5, 6, 7], starts=[0, 4, 6, 9], ends=[3, 6, 9, 13]),
    # 8: pieces found before a failure are discarded (un ##aff then 'x' fails -> one [UNK])
    dict(text="unaffx", lower=True, tokens=["[UNK]"], ids=[1], starts=[0], ends=[6]),
    # 9: final sigma: 'ΑΣ'.lower() == 'ας' (context-dependent lower-casing)
    dict(text="ΑΣ", lower=True, tokens=["α", "##ς"], ids=[15, 16], starts=[0, 1], ends=[1, 2]),
    # 10: Σ followed by a cased letter is not final: 'ΑΣΑ' -> 'ασα' (no ##α in vocab -> [UNK])
    dict(text="ΑΣΑ", lower=True, tokens=["[UNK]"], ids=[1], starts=[0], ends=[3]),
    # 11: precomposed é -> NFD e + U+0301 (Mn, dropped)
    dict(text="é", lower=True, tokens=["e"], ids=[18], starts=[0], ends=[1]),
    # 12: e + combining acute: the mark is dropped, the token covers only the 'e'
    dict(text="e\u0301", lower=True, tokens=["e"], ids=[18], starts=[0], ends=[1]),
    # 13: Hangul syllable decomposes to three jamo by NFD, all mapped to the one syllable
    dict(text="한", lower=True, tokens=["\u1112", "##\u1161", "##\u11ab"], ids=[19, 20, 21],
         starts=[0, 0, 0], ends=[1, 1, 1]),
    # 14: U+2028 is whitespace for str.split(): 'a' and 'b' are separate words; 'b' alone is [UNK]
    dict(text="a\u2028b", lower=True, tokens=["a", "[UNK]"], ids=[13, 1], starts=[0, 2],
         ends=[1, 3]),
    # 15: NUL, U+FFFD and a Cc control are deleted (not separators): 'ab' is one word
    dict(text="\x00a\ufffdb\x01", lower=True, tokens=["a", "##b"], ids=[13, 14], starts=[1, 3],
         ends=[2, 4]),
    # 16: full-width digits are not CJK: '２０' is one word; full-width '！' is punctuation
    dict(text="２０！", lower=True, tokens=["２０", "！"], ids=[24, 25], starts=[0, 2],
         ends=[2, 3]),
    # 17: CJK compatibility ideograph U+F900 -> NFD U+8C48 (only when lower-casing)
    dict(text="\uf900", lower=True, tokens=["豈"], ids=[26], starts=[0], ends=[1]),
    # 18: ... and without lower-casing there is no NFD: not in the vocab
    dict(text="\uf900", lower=False, tokens=["[UNK]"], ids=[1], starts=[0], ends=[1]),
    # 19: 200 chars is still WordPiece-d (a ##a ... ##a)
    dict(text="a" * 200, lower=True, tokens=["a"] + ["##a"] * 199, ids=[13] + [27] * 199,
         starts=list(range(200)), ends=list(range(1, 201))),
    # 20: 201 chars is one [UNK] (max_input_chars_per_word=200)
    dict(text="a" * 201, lower=True, tokens=["[UNK]"], ids=[1], starts=[0], ends=[201]),
    # 21: literal special-token text is split at its brackets, never read as a special token
    dict(text="[CLS]", lower=True, tokens=["[", "[UNK]", "]"], ids=[28, 1, 29],
         starts=[0, 1, 4], ends=[1, 4, 5]),
    # 22: a zero-width space (Cf) is deleted, joining 'hello' and 'world' into one unknown word
    dict(text="hello\u200bworld", lower=True, tokens=["[UNK]"], ids=[1], starts=[0],
         ends=[11]),
    # 23: the U+2028 vocab entries can never be produced (their keys are "" and "##")
    dict(text="\u2028", lower=True, tokens=[], ids=[], starts=[], ends=[]),
]


def _case_id(i_case):
    i, case = i_case
    return f"{i}:{case['text'][:12]!r}:lower={case['lower']}"


@pytest.mark.parametrize("case", GOLDEN, ids=[_case_id(x) for x in enumerate(GOLDEN)])
def test_golden(tiny_vocab, case):
    tok = wwm_fast.FullTokenizer(tiny_vocab, do_lower_case=case["lower"])
    enc = tok.encode(case["text"])
    assert enc.ids.tolist() == case["ids"]
    assert enc.starts.tolist() == case["starts"]
    assert enc.ends.tolist() == case["ends"]
    assert enc.row_splits.tolist() == [0, len(case["ids"])]
    assert tok.tokenize(case["text"]) == case["tokens"]


@pytest.mark.parametrize("case", GOLDEN, ids=[_case_id(x) for x in enumerate(GOLDEN)])
def test_golden_matches_google(tiny_vocab, case):
    ref = google_tokenizer(tiny_vocab, case["lower"])
    assert ref.tokenize(case["text"]) == case["tokens"]
    assert google_ids(ref, case["text"]) == case["ids"]


def test_vocab_u2028_entries(vocab_file):
    vocab = load_vocab(vocab_file)
    assert len(vocab) == 21128
    assert vocab[""] == 343 and vocab["##"] == 13502
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102, 103]
    ref = google_tokenizer(vocab_file, True)
    assert list(vocab.items()) == list(ref.vocab.items())


def test_api_matches_google(vocab_file):
    tok = wwm_fast.FullTokenizer(vocab_file)
    ref = google_tokenizer(vocab_file, True)
    assert tok.inv_vocab == ref.inv_vocab
    tokens = ["中", "##国", "[MASK]", "[UNK]"]
    assert tok.convert_tokens_to_ids(tokens) == ref.convert_tokens_to_ids(tokens)
    assert tok.convert_ids_to_tokens([0, 100, 343, 13502]) == ref.convert_ids_to_tokens(
        [0, 100, 343, 13502])


def test_unicode_tables_match_this_python():
    assert _wordpiece.UNIDATA_VERSION == unicodedata.unidata_version


# -- whole corpora ------------------------------------------------------------------------------


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "cased"])
@pytest.mark.parametrize("corpus", ["people_daily_lines", "reviews_lines"])
def test_every_line_of_corpus_matches_google(vocab_file, corpus, lower, request):
    lines = request.getfixturevalue(corpus)
    tok = wwm_fast.FullTokenizer(vocab_file, do_lower_case=lower)
    ref = google_tokenizer(vocab_file, lower)
    enc = tok.encode_batch(lines)
    assert len(enc.row_splits) == len(lines) + 1
    ids, splits = enc.ids.tolist(), enc.row_splits.tolist()
    mismatches = [i for i, line in enumerate(lines)
                  if ids[splits[i]:splits[i + 1]] != google_ids(ref, line)]
    assert not mismatches, f"{len(mismatches)} lines differ, first: {lines[mismatches[0]]!r}"


# -- adversarial Unicode --------------------------------------------------------------------------

ADVERSARIAL = [
    "", " ", "\t\n\r", "\u3000\u3000", "\x00", "\x00\x00abc", "\ufffd", "a\ufffdb",
    "\x01\x02\x7f\x85\x9f", "\x0b\x0c\x1c\x1d\x1e\x1f", "a\x0bb\x1cc",
    "\u200b\u200c\u200d\u2060\ufeff\u00ad",  # Cf: deleted
    "in\u00adter\u200dna\u2060tion\ufeffal",
    "\ue000\uf8ff\U000f0000\U0010fffd",  # private use (Co): kept, [UNK]
    "a\ue000b", "\u0378\u0380\U000e0080\U0003fffe",  # unassigned (Cn)
    "\ud800", "a\udfffb", "\ud83d\ude00",  # lone surrogates (Cs)
    "e\u0301\u0302\u0303", "\u0301\u0301", "a\u0301b\u0327c", "\u1e9b\u0323", "\u0344",
    "o\u0328\u0301", "a\u0306\u0303\u0302\u0301\u0300",  # stacked marks
    "\u0915\u093c\u094d\u0937", "\u0e01\u0e34\u0e4c", "\u05e9\u05c1\u05bc",  # Indic, Thai, Hebrew
    "\U0001d165\U0001d16d\u0301", "a\U0001d16d\u0301\U0001d165",  # Mc with ccc, reordering
    "한국어 테스트", "\u1100\u1161\u11a8", "ㄱㄴ", "\uac00\ud7a3",  # Hangul
    "\u4e00\u9fff\u3400\u4dbf", "\U00020000\U0002a6df\U0002a700\U0002b73f\U0002b740\U0002b81f",
    "\U0002b820\U0002b91f\U0002cea1\U0002ceaf", "\U0002ceb0\U0002ebe0\U00030000\U00031350",
    "\uf900\uf901\ufa0e\ufa6d\ufad9", "\U0002f800\U0002f801\U0002fa1d",  # compatibility ideographs
    "\u2f00\u2fd5\u31c0\u3005\u3007\u303b",  # Kangxi radicals, strokes, iteration marks
    "ＡＢＣ１２３！？＠", "１９９８年", "６℃", "１８０ｋｇ", "ｈｅｌｌｏ　ｗｏｒｌｄ",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f44d\U0001f3fd", "\U0001f1e8\U0001f1f3",
    "\u2764\ufe0f", "😎😎", "a😎b",
    "a\u2028b\u2029c", "\u2028\u2029", "\u0085x\u0085",
    "ΑΣ ΑΣΑ Σ ΣΑ ὈΔΥΣΣΕΎΣ", "ΑΣ'", "ΑΣ'Α", "Α.Σ", "Α\u0345Σ", "aΣ", "ΑΣ\u0301",
    "İstanbul", "\u0130\u0049\u0131", "ǅǄǆ", "ﬀﬁ ß ẞ", "\u1e9e", "ΐΰ",
    "Straße GROSS", "Ǆemal", "K\u212a\u2126",  # Kelvin sign, Ohm sign (NFD singletons)
    "\u00bd\u2153\u2460\u00b2", "$+<=>^|~`", "¥°×①℃", "…—“”‘’", "«»¿¡", "a.b,c;d",
    "x" * 199, "x" * 200, "x" * 201, "é" * 201, "\u0301" * 300, "ab" * 150,
    "   leading and trailing   ", "tab\tsep\tarated", "mixed中文english混合123",
    "http://www.example.com/路径?q=1&r=2", "user@example.com", "C++ & C#",
    "\u00e9\u0065\u0301", "\u212b\u00c5A\u030a", "\ufb01\ufb02",
    "\u0041\u030a\u0327", "\u0063\u0327\u0301",
]


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "cased"])
def test_adversarial_unicode_matches_google(vocab_file, lower):
    tok = wwm_fast.FullTokenizer(vocab_file, do_lower_case=lower)
    ref = google_tokenizer(vocab_file, lower)
    enc = tok.encode_batch(ADVERSARIAL)
    for i, text in enumerate(ADVERSARIAL):
        ours = enc.ids[enc.row_splits[i]:enc.row_splits[i + 1]].tolist()
        assert ours == google_ids(ref, text), f"case {i}: {text!r}"
        assert tok.tokenize(text) == ref.tokenize(text), f"case {i}: {text!r}"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=40))
def test_random_unicode_matches_google(vocab_file, text):
    for lower in (True, False):
        tok = _cached(vocab_file, lower)
        assert tok.encode(text).ids.tolist() == google_ids(google_tokenizer(vocab_file, lower), text)


_CACHE = {}


def _cached(vocab_file, lower):
    key = (vocab_file, lower)
    if key not in _CACHE:
        _CACHE[key] = wwm_fast.FullTokenizer(vocab_file, do_lower_case=lower)
    return _CACHE[key]


# -- offsets, batching, threads ---------------------------------------------------------------------


def _normalize(text, lower):
    text = "".join(c for c in text if c not in "\x00\ufffd" and (
        c in "\t\n\r" or unicodedata.category(c) not in ("Cc", "Cf")))  # Google's _clean_text
    if lower:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "cased"])
def test_offsets_slice_back_to_the_token_text(vocab_file, people_daily_lines, reviews_lines, lower):
    tok = _cached(vocab_file, lower)
    lines = people_daily_lines[:3000] + reviews_lines[:3000] + ADVERSARIAL
    enc = tok.encode_batch(lines)
    inv = tok.inv_vocab
    for i, line in enumerate(lines):
        for j in range(enc.row_splits[i], enc.row_splits[i + 1]):
            start, end = int(enc.starts[j]), int(enc.ends[j])
            assert 0 <= start < end <= len(line)
            piece = inv[int(enc.ids[j])]
            source = line[start:end]
            if piece != "[UNK]":
                bare = piece[2:] if piece.startswith("##") else piece
                # the token is the normalized source (a jamo is part of its syllable's NFD; a
                # final sigma is context-dependent, so the slice alone lowers to σ)
                assert bare in _normalize(source, lower).replace("σ", "ς") or \
                    bare in _normalize(source, lower), (line, piece, source)


def test_batch_equals_loop_and_threads_agree(vocab_file, people_daily_lines):
    tok = _cached(vocab_file, True)
    lines = people_daily_lines[:5000]
    batch = tok.encode_batch(lines, num_threads=1)
    for k in range(0, 5000, 97):
        one = tok.encode(lines[k])
        lo, hi = batch.row_splits[k], batch.row_splits[k + 1]
        assert one.ids.tolist() == batch.ids[lo:hi].tolist()
        assert one.starts.tolist() == batch.starts[lo:hi].tolist()
        assert one.ends.tolist() == batch.ends[lo:hi].tolist()
    big = people_daily_lines * 2  # enough bytes for several threads to really start
    one = tok.encode_batch(big, num_threads=1)
    for n in (2, 3, -1):
        many = tok.encode_batch(big, num_threads=n)
        for a, b in zip(one, many):
            np.testing.assert_array_equal(a, b)


def test_bytes_lines_equal_str_lines(vocab_file, reviews_lines):
    tok = _cached(vocab_file, True)
    lines = reviews_lines[:2000]
    a = tok.encode_batch(lines)
    b = tok.encode_batch([x.encode("utf-8") for x in lines])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_million_char_line(vocab_file):
    tok = _cached(vocab_file, True)
    line = ("中文abc，" * 200_000)
    enc = tok.encode(line)
    assert len(enc.ids) == 4 * 200_000
    assert enc.ends[-1] == len(line)


def test_encode_file_splits_like_gfile(vocab_file, tmp_path):
    tok = _cached(vocab_file, True)
    path = tmp_path / "in.txt"
    # GFile: split on \n only, every \r removed (also inside a line), last line without \n kept
    path.write_bytes("中\r国\r\n\n a\u2028b \nend".encode("utf-8"))
    enc = tok.encode_file(path)
    assert enc.blank.tolist() == [0, 1, 0, 0]
    ref = google_tokenizer(vocab_file, True)
    expected = [google_ids(ref, x) for x in ["中国\n", "\n", " a\u2028b \n", "end"]]
    got = [enc.ids[enc.row_splits[i]:enc.row_splits[i + 1]].tolist() for i in range(4)]
    assert got == expected
    assert enc.starts.tolist()[:2] == [0, 1]  # offsets count characters after \r removal


# -- bad input -------------------------------------------------------------------------------------

INVALID_UTF8 = [
    b"\xff", b"a\x80b", b"\xc3", b"\xe4\xb8", b"\xe4\xb8A", b"\xed\xa0\x80", b"\xf0\x9f\x98",
    b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf8\x88\x80\x80\x80", b"\xe4\xb8\xad\xff\xe6\x96\x87",
    b"ok \xe4\xb8\xad\xe6", b"\xf0\x9f\x98\x8e\x9f\x98\x8e",
]


@pytest.mark.parametrize("raw", INVALID_UTF8)
def test_invalid_utf8_ignored_as_google(vocab_file, raw):
    tok = _cached(vocab_file, True)
    ref = google_tokenizer(vocab_file, True)
    text = raw.decode("utf-8", "ignore")  # Google's convert_to_unicode on bytes
    assert tok.encode(raw).ids.tolist() == google_ids(ref, text)
    assert tok.encode_batch([raw, raw], errors="ignore").ids.tolist() == google_ids(ref, text) * 2


@given(st.binary(max_size=30))
@settings(max_examples=300, deadline=None)
def test_random_bytes_decode_like_python(vocab_file, raw):
    tok = _cached(vocab_file, False)
    ours = tok.encode_batch([raw], errors="ignore")
    ref = tok.encode_batch([raw.decode("utf-8", "ignore")])
    np.testing.assert_array_equal(ours.ids, ref.ids)
    np.testing.assert_array_equal(ours.starts, ref.starts)


def test_invalid_utf8_strict_names_file_and_line(vocab_file, tmp_path):
    tok = _cached(vocab_file, True)
    path = tmp_path / "bad.txt"
    path.write_bytes("第一行\n第二行\n".encode() + b"ab\xe4\xb8cd\n")
    with pytest.raises(ValueError, match=r"bad\.txt: line 3: invalid UTF-8 b'\\xe4\\xb8' at byte 2"):
        tok.encode_file(path)
    enc = tok.encode_file(path, errors="ignore")
    assert len(enc.row_splits) == 4
    with pytest.raises(ValueError, match="line 2: invalid UTF-8"):
        tok.encode_batch([b"ok", b"\xff"], errors="strict")


def test_vocab_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_file not found: '.*missing.txt'"):
        wwm_fast.FullTokenizer(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="vocab_file is empty: '.*empty.txt'"):
        wwm_fast.FullTokenizer(empty)
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("[PAD]\n[CLS]\n[SEP]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_unk.txt' has no '\[UNK\]' entry"):
        wwm_fast.FullTokenizer(no_unk)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"[UNK]\n\xff\n")
    with pytest.raises(ValueError, match="bad.txt' line 2: invalid UTF-8"):
        wwm_fast.FullTokenizer(bad)
    with pytest.raises(ValueError, match="is a directory"):
        wwm_fast.FullTokenizer(tmp_path)


def test_argument_errors(vocab_file):
    tok = _cached(vocab_file, True)
    with pytest.raises(ValueError, match="num_threads must be -1 .* got 0"):
        tok.encode_batch(["a"], num_threads=0)
    with pytest.raises(ValueError, match=r"errors must be one of \['strict', 'ignore'\], got 'replace'"):
        tok.encode_batch(["a"], errors="replace")
    with pytest.raises(TypeError, match="all be str or all be bytes"):
        tok.encode_batch(["a", b"b"])
    with pytest.raises(TypeError, match="not a single str"):
        tok.encode_batch("abc")
    with pytest.raises(TypeError):
        tok._native.encode_lines(["a"], 1.5)
