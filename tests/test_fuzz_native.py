"""Fuzz targets for every native entry point, driven by hypothesis (issue 11).

Each target feeds arbitrary or lightly corrupted input to one native entry point and accepts
exactly two outcomes: a ValueError / IndexError (the documented errors, with a message), or a
result that satisfies the entry point's invariants (offsets inside the input, ranges inside the
corpus, bytes that decode again). Anything else -- another exception, a crash, a hang -- fails.

The example counts are small so that the suite stays fast, and derandomized so that it is
deterministic; ``WWM_FUZZ_EXAMPLES=N`` raises them (and randomizes), which is how
tools/sanitize.sh runs them on the ASan + UBSan build. The long runs (>= 1 M inputs per entry
point) use libFuzzer on the C++ kernels and tools/fuzz_records.py on the Cython reader; see
csrc/FUZZING.md. Model Garden compat's entry points (``_garden``) have targets here too.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wwm_fast import (_align, _chinese_convert, _garden, _instances, _ltp_cws, _masking,
                      _records, _shard, _tfrecord, _wordpiece)

import native_inputs as ni

_N = int(os.environ.get("WWM_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int):
    """hypothesis settings of a fuzz target: `examples` in the normal suite (deterministic),
    WWM_FUZZ_EXAMPLES when set (random)."""
    return settings(max_examples=_N or examples, derandomize=not _N, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))


ERRORS = (ValueError, IndexError)

int64s = st.one_of(st.integers(-3, 80), st.sampled_from([2**63 - 1, -2**63, 2**62, 2**31 - 1,
                                                          2**31, -2**31, 2**32]))
int32s = st.one_of(st.integers(-3, 80), st.sampled_from([2**31 - 1, -2**31, 2**30, 2**16]))


# -- tokenizer ---------------------------------------------------------------------------------

_KEYS = ni.VOCAB + ["##人", "中国", "ａ", "é", "##é", "Σ", "ς", "σ", "\u2028", ""]
_TOK = _wordpiece.FullTokenizer(_KEYS, np.arange(len(_KEYS), dtype=np.int32), 1, True, 8)
_TOK_CASED = _wordpiece.FullTokenizer(_KEYS, np.arange(len(_KEYS), dtype=np.int32), 1, False, 3)
_FRAGMENTS = [s.encode() for s in ["中", "国", "人", "ab", "bc", "Σ", "É", "\u0301", "\u3000",
                                   "\r", "\n", " ", "\t", "，", "!", "\x00", "\ufffd", "한"]]
raw_bytes = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=6)),
                     max_size=30).map(b"".join)


def _check_encoding(out, n_lines, sizes=None):
    ids, row_splits, starts, ends, blank = out[:5]
    assert len(row_splits) == n_lines + 1 and row_splits[0] == 0
    assert np.all(np.diff(row_splits) >= 0) and row_splits[-1] == len(ids)
    assert len(blank) == n_lines and set(blank.tolist()) <= {0, 1}
    assert ids.size == 0 or (ids.min() >= 0 and ids.max() < len(_KEYS))
    if len(starts):
        assert len(starts) == len(ends) == len(ids)
        assert np.all(starts >= 0) and np.all(starts < ends)
        if sizes is not None:  # offsets count code points, at most one per byte
            line_of = np.repeat(np.arange(n_lines), np.diff(row_splits))
            assert np.all(ends <= np.asarray(sizes)[line_of])


@fuzz(300)
@given(raw_bytes, st.sampled_from(["strict", "ignore"]), st.booleans(), st.integers(1, 4),
       st.booleans(), st.booleans())
def test_fuzz_tokenizer_buffer(data, errors, strip_cr, threads, offsets, cased):
    tok = _TOK_CASED if cased else _TOK
    out = tok.encode_buffer(data, None, errors, strip_cr, threads, offsets)
    splits = out[5]
    n_lines = len(splits) - 1
    if out[6] >= 0:  # strict: the first invalid line, byte and length inside the data
        assert errors == "strict" and 0 <= out[6] < n_lines
        assert 0 <= out[7] < splits[out[6] + 1] - splits[out[6]] and out[8] >= 1
        return
    _check_encoding(out, n_lines, np.diff(splits))


@fuzz(200)
@given(raw_bytes, st.lists(int64s, max_size=6))
def test_fuzz_tokenizer_line_splits(data, splits):
    try:
        out = _TOK.encode_buffer(data, np.array(splits, np.int64), "ignore", True, 2, True)
    except ERRORS:
        return
    _check_encoding(out, len(splits) - 1, np.diff(splits))


@fuzz(200)
@given(st.lists(st.text(st.characters(codec=None), max_size=12), max_size=6), st.integers(1, 3))
def test_fuzz_tokenizer_lines(lines, threads):
    out = _TOK.encode_lines(lines, threads)
    _check_encoding(out, len(lines), [len(s) for s in lines])


@fuzz(100)
@given(st.lists(st.text(max_size=5), max_size=6), st.lists(int32s, max_size=6), int32s,
       st.integers(-2, 5))
def test_fuzz_tokenizer_construction(keys, ids, unk_id, max_chars):
    try:
        tok = _wordpiece.FullTokenizer(keys, np.array(ids, np.int32), unk_id, True, max_chars)
    except ERRORS:
        return
    assert len(keys) == len(ids) and unk_id in ids and max_chars >= 1
    out = tok.encode_lines(["".join(keys) + " x" * 3], 1)
    assert set(out[0].tolist()) <= set(ids)


# -- aligner -----------------------------------------------------------------------------------

def _i32(v):
    return np.array(v, np.int32)


@fuzz(300)
@given(st.lists(st.tuples(st.integers(-2, 12), st.integers(-2, 12), st.booleans()), max_size=12),
       st.lists(st.tuples(st.integers(-2, 12), st.integers(-2, 12)), max_size=8),
       st.lists(st.integers(0, 12), max_size=3), st.lists(st.integers(0, 8), max_size=3),
       st.integers(1, 4))
def test_fuzz_aligner(tokens, words, tok_cuts, word_cuts, threads):
    n_lines = max(len(tok_cuts), len(word_cuts)) + 1
    tok_splits = np.array([0, *sorted(tok_cuts)[:n_lines - 1], len(tokens)], np.int64)
    word_splits = np.array([0, *sorted(word_cuts)[:n_lines - 1], len(words)], np.int64)
    if len(tok_splits) != len(word_splits):  # unequal line counts: the binding must say so
        word_splits = word_splits[:len(tok_splits)]
    ws, fb = np.empty(len(tokens), np.uint8), np.empty(len(tok_splits) - 1, np.uint8)
    try:
        n = _align.align_words(_i32([t[0] for t in tokens]), _i32([t[1] for t in tokens]),
                               np.array([t[2] for t in tokens], np.uint8), tok_splits,
                               _i32([w[0] for w in words]), _i32([w[1] for w in words]),
                               word_splits, ws, fb, threads)
    except ERRORS:
        return
    assert set(ws.tolist()) <= {0, 1} and set(fb.tolist()) <= {0, 1} and n == fb.sum()


# -- corpora and instances -----------------------------------------------------------------------

@st.composite
def corpora(draw):
    """A valid corpus most of the time, sometimes with one split or array corrupted."""
    n_sent = draw(st.integers(0, 8))
    lengths = draw(st.lists(st.integers(1, 9), min_size=n_sent, max_size=n_sent))
    sent = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n_sent - 1)), max_size=3))))
    doc = np.array([0, *[c for c in cuts if c < n_sent], n_sent] if n_sent else [0], np.int64)
    n_ids = int(sent[-1])
    ids = np.array(draw(st.lists(st.integers(0, len(ni.VOCAB) - 1), min_size=n_ids,
                                 max_size=n_ids)), np.int32)
    ws = np.array(draw(st.lists(st.integers(0, 1), min_size=n_ids, max_size=n_ids)), np.uint8)
    c = {"ids": ids, "word_start": ws, "sent_splits": sent, "doc_splits": doc}
    corrupt = draw(st.sampled_from([None] * 6 + ["sent_splits", "doc_splits", "word_start",
                                                 "ids"]))
    if corrupt and len(c[corrupt]):
        arr = c[corrupt].copy()
        arr[draw(st.integers(0, len(arr) - 1))] = draw(int64s) % 256 if corrupt == "word_start" \
            else draw(int32s) if corrupt == "ids" else draw(int64s)
        c[corrupt] = arr
    return c


@st.composite
def instance_sets(draw, with_preds=False):
    n = draw(st.integers(0, 6))
    cols = {k: draw(st.lists(gen, min_size=n, max_size=n))
            for k, gen in (("a_start", int64s), ("a_len", int32s), ("b_start", int64s),
                           ("b_len", int32s))}
    if draw(st.booleans()):  # mostly small, valid-looking ranges
        cols = {k: [abs(v) % 12 for v in vals] for k, vals in cols.items()}
    splits, positions = [0], []
    for _ in range(n):
        k = draw(st.integers(0, 3))
        positions += draw(st.lists(st.integers(-1, 20), min_size=k, max_size=k))
        splits.append(len(positions))
    if with_preds and draw(st.booleans()):
        splits[draw(st.integers(0, n))] = draw(int64s)
    d = ni.instances(cols["a_start"], cols["a_len"], cols["b_start"], cols["b_len"],
                     preds=(splits, positions))
    d["key"] = np.array(draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n)),
                        np.uint64)
    return d


configs = st.fixed_dictionaries({
    "seq": st.one_of(st.integers(4, 40), st.sampled_from([-1, 0, 2**20 + 1, 2**31 - 1])),
    "pred": st.one_of(st.integers(1, 6), st.sampled_from([0, -1, 2**31 - 1])),
    "prob": st.sampled_from([0.15, 0.5, 0.999, 0.0, 1.0, float("nan")]),
    "short": st.sampled_from([0.0, 0.1, 1.0, -0.5]),
    "dupe": st.integers(-1, 3),
})


def _check_ranges(out, c, seq):
    n_ids = len(c["ids"])
    for a, al, b, bl in zip(out["a_start"], out["a_len"], out["b_start"], out["b_len"]):
        assert 0 <= a and 0 <= al and a + al <= n_ids and 0 <= b and 0 <= bl and b + bl <= n_ids
        assert al + bl + (3 if bl else 2) <= seq


def _check_preds(p, n, seq):
    s = p["pred_splits"]
    assert len(s) == n + 1 and s[0] == 0 and np.all(np.diff(s) >= 0)
    assert s[-1] == len(p["pred_positions"]) == len(p["pred_labels"])
    assert np.all((p["pred_positions"] > 0) & (p["pred_positions"] < seq))


@fuzz(200)
@given(corpora(), configs, st.booleans(), st.integers(0, 2**64 - 1))
def test_fuzz_build_fast(c, cfg, next_sentence, seed):
    try:
        out = _instances.build_fast(c, seed, 3, cfg["seq"], cfg["pred"], cfg["prob"],
                                    cfg["short"], cfg["dupe"], next_sentence, ni.RAND_IDS)
    except ERRORS:
        return
    _check_ranges(out, c, cfg["seq"])


@fuzz(200)
@given(corpora(), configs, st.booleans(), st.lists(st.integers(0, 2**32 - 1), max_size=3))
def test_fuzz_build_compat(c, cfg, whole_word, seed_key):
    try:
        out = _instances.build_compat(c, seed_key, cfg["seq"], cfg["pred"], cfg["prob"],
                                      cfg["short"], cfg["dupe"], whole_word, ni.CLS, ni.SEP,
                                      ni.MASK, ni.RAND_IDS)
    except ERRORS:
        return
    _check_ranges(out, c, cfg["seq"])
    _check_preds(out, len(out["a_start"]), cfg["seq"])


# the [MASK] id and the random-replacement table (negative ids once dropped predictions that
# pred_splits counted: the samplers marked chosen positions with -1)
mask_ids = st.one_of(st.just(ni.MASK), st.sampled_from([0, -1, -2**31, 2**31 - 1]))
rand_tables = st.one_of(st.just(ni.RAND_IDS), st.sampled_from([
    np.array([-1], np.int32), np.array([0, -5, 3], np.int32), np.array([2**31 - 1], np.int32)]))


@fuzz(300)
@given(corpora(), instance_sets(), configs, st.booleans(), st.integers(1, 3), mask_ids,
       rand_tables)
def test_fuzz_sampler(c, inst, cfg, whole_word, threads, mask_id, rand_ids):
    try:
        p = _masking.sample_masks(c, inst, cfg["seq"], cfg["pred"], cfg["prob"], whole_word,
                                  mask_id, rand_ids, threads)
    except ERRORS:
        return
    _check_ranges(inst, c, cfg["seq"])
    _check_preds(p, len(inst["a_start"]), cfg["seq"])
    assert np.all(np.diff(p["pred_splits"]) <= cfg["pred"])


ngram_tables = st.one_of(
    st.lists(st.floats(0, 1), min_size=1, max_size=_masking.MAX_NGRAM_TABLE_SIZE).filter(
        lambda v: sum(v) > 0).map(lambda v: [x / sum(v) for x in v]),  # valid tables
    st.lists(st.one_of(st.floats(-2, 2), st.sampled_from([float("nan"), float("inf"), -0.0])),
             max_size=_masking.MAX_NGRAM_TABLE_SIZE + 2))


@fuzz(300)
@given(corpora(), instance_sets(), configs, st.booleans(), ngram_tables, st.integers(1, 3),
       mask_ids, rand_tables)
def test_fuzz_ngram_sampler(c, inst, cfg, whole_word, probs, threads, mask_id, rand_ids):
    try:
        p = _masking.sample_ngram_masks(c, inst, cfg["seq"], cfg["pred"], cfg["prob"], whole_word,
                                        np.array(probs, np.float64), mask_id, rand_ids, threads)
    except ERRORS:
        return
    _check_ranges(inst, c, cfg["seq"])
    _check_preds(p, len(inst["a_start"]), cfg["seq"])
    assert np.all(np.diff(p["pred_splits"]) <= cfg["pred"])
    masked, drawn = p["ngram_hist"], p["ngram_drawn_hist"]
    assert len(masked) == len(drawn) == _masking.MAX_NGRAM_TABLE_SIZE + 1
    assert masked[0] == drawn[0] == 0
    assert masked.sum() == drawn.sum() and not drawn[len(probs) + 1:].any()
    assert not drawn[1:len(probs) + 1][np.array(probs) == 0].any()  # a size of probability 0
    sizes = np.arange(len(masked))
    assert (sizes * masked).sum() == p["group_hist"].sum()  # words in n-grams = words masked
    assert (sizes * masked).sum() <= (sizes * drawn).sum()  # n-grams are only ever shortened


@fuzz(300)
@given(corpora(), instance_sets(with_preds=True), configs,
       st.lists(st.integers(-1, 7), max_size=8), st.integers(1, 3), st.integers(0, 600))
def test_fuzz_serializer(c, inst, cfg, order, threads, capacity):
    out = np.empty(capacity, np.uint8)
    try:
        used, done = _tfrecord.serialize_into(c["ids"], inst, np.array(order, np.int64),
                                              cfg["seq"], cfg["pred"], ni.CLS, ni.SEP, out,
                                              threads)
    except ERRORS:
        return
    assert 0 <= done <= len(order) and used <= capacity
    records = list(_records.iter_records(out[:used].tobytes(), "out"))
    assert len(records) == done
    for r, k in zip(records, order):
        ex = _records.parse_example(r)
        assert len(ex["input_ids"]) == cfg["seq"] and len(ex["masked_lm_ids"]) == cfg["pred"]
        assert ex["next_sentence_labels"].tolist() == [int(inst["next_label"][k])]


# -- fast mode's shard kernel ---------------------------------------------------------------------

_SHARD_VOCAB = _shard.Vocab(("\n".join(_KEYS) + "\n").encode())


def _shard_kernel(cfg, whole_word, next_sentence, chunk_bytes, ngram_probs=None):
    return _shard.Kernel(_SHARD_VOCAB, "[UNK]", True, 8, cfg["seq"], cfg["pred"], cfg["prob"],
                         cfg["short"], cfg["dupe"], whole_word, next_sentence, 7, chunk_bytes,
                         ngram_probs=ngram_probs)


def _check_ngram_figures(shard, probs):
    """With n-gram masking: the histograms as SampleNgramMasks reports them (a shard with
    documents), every masked n-gram drawn once, no size of probability 0 drawn."""
    f = shard.figures()
    if probs is None or f["documents"] == 0:
        assert "masked_ngram_hist" not in f
        return
    masked, drawn = np.array(f["masked_ngram_hist"]), np.array(f["ngram_drawn_hist"])
    assert len(masked) == len(drawn) == _shard.MAX_NGRAM_TABLE_SIZE + 1
    assert masked[0] == drawn[0] == 0 and masked.sum() == drawn.sum()
    assert not drawn[len(probs) + 1:].any()
    assert not drawn[1:len(probs) + 1][np.array(probs) == 0].any()
    sizes = np.arange(len(masked))
    assert (sizes * masked).sum() == sum(f["masked_group_hist"])


def _check_shard(shard, threads, seq, pred):
    data = bytearray()
    n = 0
    while (chunk := shard.next_chunk(threads)) is not None:
        data += chunk
        n += 1
    records = list(_records.iter_records(bytes(data), "out"))
    assert len(records) == shard.n_instances == shard.figures()["instances"]
    for r in records[:20]:
        ex = _records.parse_example(r)
        assert len(ex["input_ids"]) == seq and len(ex["masked_lm_ids"]) == pred
        assert set(ex["input_mask"].tolist()) <= {0, 1}


@fuzz(300)
@given(raw_bytes.map(lambda b: b * 3), st.sampled_from(["strict", "ignore"]), configs,
       st.booleans(), st.booleans(), st.integers(1, 3), st.integers(0, 3000),
       st.one_of(st.none(), ngram_tables))
def test_fuzz_shard_text(data, errors, cfg, whole_word, next_sentence, threads, chunk_bytes,
                         probs):
    try:
        kernel = _shard_kernel(cfg, whole_word, next_sentence, chunk_bytes, probs)
    except ERRORS:
        return
    shard, err = kernel.text_shard(data, errors, 5, threads)
    if err is not None:
        line, byte, length, begin, end = err
        assert errors == "strict" and shard is None
        assert 0 <= begin <= end <= len(data) and byte >= 0 and length >= 1
        assert byte + length <= end - begin
        return
    _check_shard(shard, threads, cfg["seq"], cfg["pred"])
    _check_ngram_figures(shard, probs)


@fuzz(300)
@given(corpora(), configs, st.booleans(), st.booleans(), st.integers(1, 3),
       st.integers(-3, 2**40), st.one_of(st.none(), ngram_tables))
def test_fuzz_shard_documents(c, cfg, whole_word, next_sentence, threads, lines, probs):
    try:
        kernel = _shard_kernel(cfg, whole_word, next_sentence, 1, probs)
        shard = kernel.documents_shard(c["ids"], c["word_start"], c["sent_splits"],
                                       c["doc_splits"], 2, lines)
    except ERRORS:
        return
    _check_shard(shard, threads, cfg["seq"], cfg["pred"])
    assert shard.figures()["corpus_tokens"] == len(c["ids"])
    _check_ngram_figures(shard, probs)


@fuzz(300)
@given(st.lists(st.one_of(st.sampled_from([b"\n", b"\r", b"##", b" ", "\u2028".encode(),
                                           "\x1c".encode(), "\u00a0".encode(), b"a"]),
                          st.binary(max_size=4)), max_size=20).map(b"".join))
def test_fuzz_vocab_parser(data):
    """_shard.Vocab is load_vocab (entries, ids, order) or names load_vocab's bad line."""
    import tempfile

    from wwm_fast.tokenization import load_vocab

    v = _shard.Vocab(data)
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        try:
            want = list(load_vocab(f.name).items())
        except ValueError as e:
            assert v.error_line >= 0 or not data
            if data:
                assert f"line {v.error_line + 1}:" in str(e)
            return
    assert v.error_line == -1 and v.items() == want
    for key, index in want[:5]:
        assert v.find(key) == index


# -- Model Garden compat (_garden) ----------------------------------------------------------------

ngram_sizes = st.one_of(st.integers(1, 5), st.integers(1, 5),
                        st.sampled_from([0, -1, 2**20, 2**20 + 1, 2**31 - 1]))
# mostly valid configurations, so that the masking is reached (configs alone rarely is)
valid_configs = st.fixed_dictionaries({
    "seq": st.integers(5, 40), "pred": st.integers(1, 6),
    "prob": st.sampled_from([0.15, 0.5, 0.999]), "short": st.sampled_from([0.0, 0.1, 1.0]),
    "dupe": st.integers(1, 3),
})
garden_configs = st.one_of(valid_configs, valid_configs, configs)


def _grams(special, joins, whole_word):
    """Model Garden's units of an instance: [begin, end) runs of tokens (csrc/garden.h)."""
    grams, open_ = [], None
    for i, (sp, jn) in enumerate(zip(special, joins)):
        if whole_word and open_ is not None and jn and not sp:  # [CLS]/[SEP] never join
            continue
        if open_ is not None:
            grams.append((open_, i))
        open_ = None if sp else i
    if open_ is not None:
        grams.append((open_, len(special)))
    return grams


def _check_garden_masking(tokens, special, joins, whole_word, positions, shown, labels,
                          max_pred, prob, rand_ids):
    """One instance's predictions: sorted, on non-special tokens, labels are the tokens, at most
    max_predictions (and Model Garden's num_to_predict), whole grams, ids that masking can show."""
    n = len(tokens)
    positions = list(positions)
    assert positions == sorted(set(positions)) and all(0 <= p < n for p in positions)
    assert not any(special[p] for p in positions)
    assert list(labels) == [tokens[p] for p in positions]
    assert len(positions) <= min(max_pred, max(1, round(n * prob)))
    chosen = set(positions)
    for b, e in _grams(special, joins, whole_word):
        assert all(p in chosen for p in range(b, e)) or not any(p in chosen for p in range(b, e))
    allowed = set(int(x) for x in rand_ids) | {ni.MASK}
    assert all(v in allowed or v == tokens[p] for p, v in zip(positions, shown))


def _instance_tokens(c, a, al, b, bl):
    ids, ws = c["ids"], c["word_start"]
    tokens = [ni.CLS, *ids[a:a + al], ni.SEP, *ids[b:b + bl], ni.SEP]
    starts = [1, *ws[a:a + al], 1, *ws[b:b + bl], 1]
    special = [1] + [0] * al + [1] + [0] * bl + [1]
    return [int(t) for t in tokens], special, [int(not s) for s in starts]


@fuzz(200)
@given(corpora(), garden_configs, st.booleans(),
       st.lists(st.integers(0, 2**32 - 1), max_size=3),
       st.lists(st.integers(0, 2**32 - 1), max_size=2), ngram_sizes)
def test_fuzz_build_garden(c, cfg, whole_word, seed_key, global_key, ngram):
    try:
        out = _garden.build_garden(c, seed_key, global_key, cfg["seq"], cfg["pred"], cfg["prob"],
                                   cfg["short"], cfg["dupe"], whole_word, ngram, ni.CLS, ni.SEP,
                                   ni.MASK, ni.RAND_IDS)
    except ERRORS:
        return
    assert 1 <= ngram <= cfg["seq"] - 3 and ngram * cfg["seq"] <= _garden.MAX_NGRAM_WORK
    assert whole_word or ngram == 1
    _check_ranges(out, c, cfg["seq"])
    _check_preds(out, len(out["a_start"]), cfg["seq"])
    s = out["pred_splits"]
    for i, (a, al, b, bl) in enumerate(zip(out["a_start"], out["a_len"], out["b_start"],
                                           out["b_len"])):
        tokens, special, joins = _instance_tokens(c, a, al, b, bl)
        k = slice(s[i], s[i + 1])
        _check_garden_masking(tokens, special, joins, whole_word, out["pred_positions"][k],
                              out["pred_input_ids"][k], out["pred_labels"][k], cfg["pred"],
                              cfg["prob"], ni.RAND_IDS)


@fuzz(300)
@given(st.lists(st.tuples(st.integers(0, len(ni.VOCAB) - 1), st.booleans(), st.booleans()),
                max_size=40),
       st.booleans(), st.lists(st.integers(0, 2**32 - 1), max_size=2), garden_configs,
       ngram_sizes,
       st.sampled_from([ni.RAND_IDS] * 4 + [ni.RAND_IDS[5:6], np.zeros(0, np.int32),
                                            ni.RAND_IDS.reshape(2, -1)]),
       st.one_of(st.integers(0, 3), st.integers(1, 3), st.sampled_from([-1, 2**24 + 1])))
def test_fuzz_mask_garden(toks, whole_word, key, cfg, ngram, rand_ids, repeats):
    """The masking shim: one instance masked `repeats` times with the same generators."""
    tokens = [t for t, _, _ in toks]
    special = [int(sp) for _, sp, _ in toks]
    joins = [int(jn) for _, _, jn in toks]  # a join flag on [CLS]/[SEP] too (ignored)
    try:
        calls, r1, r2 = _garden._py_mask_garden(tokens, special, joins, whole_word, key, key,
                                                cfg["pred"], cfg["prob"], ni.MASK, rand_ids,
                                                ngram, repeats)
    except ERRORS:
        return
    assert 0 <= r1 < 1 and 0 <= r2 < 1 and len(calls) == repeats
    assert 1 <= ngram <= 2**20 and ngram * len(tokens) <= _garden.MAX_NGRAM_WORK
    for positions, shown, labels in calls:
        _check_garden_masking(tokens, special, joins, whole_word, positions, shown, labels,
                              cfg["pred"], cfg["prob"], rand_ids)


# -- the Cython reader ---------------------------------------------------------------------------

_SEEDS = [ni.bert_example(seq=3, pred=1), ni.bert_example(seq=1, pred=2),
          ni.bert_example(seq=3, pred=1, v2=True), ni.bert_example(seq=2, pred=1, v2="both"),
          ni.field(1, ni.int64_feature("a", [2**63, 1]) + ni.float_feature("b", [0.5])),
          ni.field(1, ni.field(1, ni.field(1, b"k") + ni.field(2, ni.field(1, ni.field(1, b"v")))))]
protobuf_tokens = st.one_of(
    st.sampled_from([b"\x0a", b"\x12", b"\x1a", b"\x08", b"\x0d", b"\x09", b"\x0b", b"\x80",
                     b"\xff" * 10, b"\x00"]),
    st.integers(0, 2**64 - 1).map(ni.varint), st.binary(max_size=4))


@st.composite
def example_bytes(draw):
    """A seed Example with a few edits: a byte range replaced by protobuf-looking tokens."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 4)))
        data[i:j] = draw(st.lists(protobuf_tokens, max_size=3).map(b"".join))
    return bytes(data)


def _check_example(ex):
    assert isinstance(ex, dict)
    for v in ex.values():
        assert isinstance(v, (np.ndarray, list))


@fuzz(400)
@given(st.one_of(example_bytes(), st.binary(max_size=64)))
def test_fuzz_parse_example(record):
    try:
        ex = _records.parse_example(record)
    except ERRORS:
        return
    _check_example(ex)


@st.composite
def tfrecord_files(draw):
    """Framed records (mostly with valid CRCs, so the parser is reached), sometimes with a
    corrupted or huge length, a cut, or random bytes."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        payload = draw(st.one_of(example_bytes(), st.binary(max_size=24)))
        length = draw(st.one_of(st.none(), st.none(), int64s.map(lambda v: v % 2**64)))
        parts.append(ni.frame(payload, length))
    data = b"".join(parts)
    if data and draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + draw(st.binary(max_size=3)) + data[i + draw(st.integers(0, 3)):]
    return data


@fuzz(300)
@given(tfrecord_files())
def test_fuzz_tfrecord_reader(data):
    try:
        index = _records.index_records(data, "f")
    except ERRORS:
        return
    end = 0
    for off, length in index:
        assert off == end + 12 and off + length + 4 <= len(data)
        end = off + length + 4
    assert end == len(data)


@fuzz(300)
@given(tfrecord_files(), st.integers(1, 3))
def test_fuzz_decode_bert_records(data, copies):
    data = ni.frame(ni.bert_example(seq=3, pred=1)) * copies + data
    try:
        out = _records.decode_bert_records(data, "f")
    except ERRORS:
        return
    n = len(_records.index_records(data, "f"))
    assert all(len(v) == n for v in out.values())
    np.testing.assert_array_equal(out["input_ids"][0], [1, 2, 3])


# -- Model Garden's feature renamer (_garden.rename_features) -------------------------------

V2 = [("input_ids", "input_word_ids"), ("segment_ids", "input_type_ids")]
renamings = st.sampled_from([V2, [], [(b, a) for a, b in V2], [("a", "b")],
                             [("input_ids", "segment_ids")], [("k", "input_ids")],
                             [("input_ids", "x"), ("input_ids", "y")],
                             [("a", "b"), ("b", "a")], [("input_ids", "k" * 300)]])


def _renamed(features: dict, renames) -> dict:
    new = {}
    for k, v in features.items():
        new[next((to for frm, to in renames if frm == k), k)] = v
    return new


def _parsed(record):
    try:
        return _records.parse_example(record)
    except ERRORS:
        return None


def _same_features(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert a[k] == b[k]


framed_examples = st.lists(st.one_of(example_bytes(), st.sampled_from(_SEEDS)),
                           max_size=3).map(lambda rs: b"".join(ni.frame(r) for r in rs))


@fuzz(300)
@given(st.one_of(tfrecord_files(), framed_examples), renamings, st.integers(0, 2))
def test_fuzz_rename_features(data, renames, copies):
    """Renaming keeps every record (fresh CRCs), renames exactly the keys named, keeps what a
    record holds, and refuses a record only when it is corrupt or would merge two features."""
    data = ni.frame(ni.bert_example(seq=3, pred=1)) * copies + data
    try:
        index = _records.index_records(data, "f")
    except ERRORS:
        index = None
    try:
        out = _garden.rename_features(np.frombuffer(data, np.uint8), renames)
    except ERRORS:
        if index is None:
            return
        before = [_parsed(data[o:o + n]) for o, n in index]
        # a record that the reader parses is refused only when renaming merges two features
        assert any(f is None or len(_renamed(f, renames)) < len(f) for f in before)
        return
    assert index is not None
    after = _records.index_records(out.tobytes(), "out")
    assert len(after) == len(index)
    for (o, n), (o2, n2) in zip(index, after):
        before = _parsed(data[o:o + n])
        renamed = _parsed(out[o2:o2 + n2].tobytes())
        assert (before is None) == (renamed is None)
        if before is not None:
            _same_features(_renamed(before, renames), renamed)
    if renames == V2:  # the v2 names read back as the v1 names
        try:
            plain = _records.decode_bert_records(data, "f")
        except ERRORS:
            return
        v2 = _records.decode_bert_records(out.tobytes(), "f")
        for k in plain:
            np.testing.assert_array_equal(plain[k], v2[k])


# -- LTP legacy segmentation -------------------------------------------------------------------

_LTP_CHARS = ["中", "国", "人", "a", "1", " ", "\x00", "😀"]


def _ltp_features():
    """Every LTP feature template over _LTP_CHARS (characters -2..+2, the four bigrams, the
    class pair, ch[-2] == ch[0]), each with its own index."""
    keys = [t + c for t in "01234" for c in _LTP_CHARS]
    keys += [t + a + b for t in "5678" for a in _LTP_CHARS for b in _LTP_CHARS]
    keys += ["c"] + [f"d{a}{b}" for a in range(1, 7) for b in range(1, 7)]
    return [(k, i) for i, k in enumerate(keys)]


_LTP_FEATURES = _ltp_features()
_LTP_PARAMS = [((i * 7919) % 23 - 11) / 4.0 for i in range(4 * (len(_LTP_FEATURES) + 4))]
_LTP_MODEL = _ltp_cws.Model.from_avro_block(ni.cws_datum(_LTP_FEATURES, _LTP_PARAMS), 1)
_LTP_FRAGMENTS = [c.encode() for c in _LTP_CHARS + ["\u3000", "\t", "\n", "字", "é"]]
ltp_bytes = st.lists(st.one_of(st.sampled_from(_LTP_FRAGMENTS), st.binary(max_size=4)),
                     max_size=60).map(b"".join)


def _check_words(out, row_chars, ltp_words):
    """Spans inside their row, in order, not overlapping; WordSpans hold no whitespace."""
    starts, ends, rs = out
    assert len(rs) == len(row_chars) + 1 and rs[0] == 0 and rs[-1] == len(starts) == len(ends)
    assert np.all(np.diff(rs) >= 0) and np.all(starts < ends)
    for i, chars in enumerate(row_chars):
        s, e = starts[rs[i]:rs[i + 1]], ends[rs[i]:rs[i + 1]]
        assert np.all(s >= 0) and np.all(e <= len(chars)) and np.all(e[:-1] <= s[1:])
        if not ltp_words:
            assert "".join(chars[a:b] for a, b in zip(s, e)) == "".join(chars.split())


@fuzz(300)
@given(ltp_bytes, st.lists(st.integers(0, 300), max_size=6), st.booleans(), st.booleans(),
       st.integers(1, 3), st.sampled_from([1] * 7 + [2000]))
def test_fuzz_ltp_segment(data, cuts, in_chars, ltp_words, threads, repeat):
    """Rows of arbitrary bytes, split in bytes or in code points; `repeat` makes some inputs
    large enough (> 128 KB) to be split over threads."""
    data *= repeat
    splits = np.array([0] + sorted(min(c * repeat, len(data)) for c in cuts) + [len(data)],
                      np.int64)
    try:
        out = _LTP_MODEL.segment(data, splits, in_chars, ltp_words, threads)
    except ValueError:
        try:  # an error only for invalid UTF-8 or splits past the text
            text = data.decode("utf-8")
            assert not in_chars or splits[-1] != len(text)
            return
        except UnicodeDecodeError:
            return
    if in_chars:
        text = data.decode("utf-8")
        rows = [text[a:b] for a, b in zip(splits[:-1], splits[1:])]
    else:
        rows = [data[a:b].decode("utf-8") for a, b in zip(splits[:-1], splits[1:])]
    _check_words(out, rows, ltp_words)
    if threads > 1:  # the words do not depend on the threads
        for x, y in zip(out, _LTP_MODEL.segment(data, splits, in_chars, ltp_words, 1)):
            np.testing.assert_array_equal(x, y)


def _ltp_model_works(m):
    text = "中国人民 a1\x00中😀".encode()
    _check_words(m.segment(text, np.array([0, len(text)], np.int64), False, False, 2),
                 [text.decode()], False)


@fuzz(300)
@given(st.one_of(st.binary(max_size=400), ltp_bytes), st.integers(-1, 3))
def test_fuzz_ltp_avro_record(blob, count):
    try:
        _ltp_cws.Model.check_avro_block(blob, count)
        checked = True
    except ERRORS:
        checked = False
    try:
        m = _ltp_cws.Model.from_avro_block(blob, count)
    except ERRORS:
        return
    assert checked  # what loads also passes the check
    _ltp_model_works(m)


_LTP_DATUM = ni.cws_datum([("2中", 4), ("5中国", 5), ("6国人", 4), ("c", 6), ("d55", 5),
                           ("0人", 6), ("8人民", 5)], [0.5 * i - 3 for i in range(28)],
                          map_blocks=2)


@fuzz(300)
@given(st.lists(st.tuples(st.integers(0, len(_LTP_DATUM) - 1), st.integers(0, 255),
                          st.sampled_from(["set", "insert", "delete", "cut"])),
                min_size=1, max_size=4), st.integers(1, 2))
def test_fuzz_ltp_avro_record_mutations(edits, count):
    """A valid record with bytes changed, inserted, deleted or cut off: an error or a model
    (a changed weight or name is still a model), never a crash."""
    blob = bytearray(_LTP_DATUM * count)
    for at, value, op in edits:
        at = min(at, len(blob))
        if op == "set" and at < len(blob):
            blob[at] = value
        elif op == "insert":
            blob.insert(at, value)
        elif op == "delete" and at < len(blob):
            del blob[at]
        elif op == "cut":
            del blob[at:]
    try:
        _ltp_cws.Model.check_avro_block(bytes(blob), count)
        m = _ltp_cws.Model.from_avro_block(bytes(blob), count)
    except ERRORS:
        return
    _ltp_model_works(m)


@fuzz(200)
@given(st.lists(st.binary(max_size=9), max_size=30),
       st.lists(st.integers(-3, 40), min_size=30, max_size=30),
       st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=80),
       st.sampled_from([None, "shift", "reverse", "short"]))
def test_fuzz_ltp_model_arrays(keys, index, params, bad_offsets):
    blob = b"".join(keys)
    offsets = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=offsets[1:])
    if bad_offsets == "shift" and len(keys):
        offsets[len(keys) // 2] += 1000
    elif bad_offsets == "reverse" and len(keys) > 1:
        offsets[1:-1] = offsets[1:-1][::-1]
    elif bad_offsets == "short":
        offsets = offsets[:-1]
    try:
        m = _ltp_cws.Model.from_arrays(blob, offsets, np.array(index[:len(keys)], np.int64),
                                       np.array(params, np.float64))
    except ERRORS:
        return
    _ltp_model_works(m)


# -- the OpenCC-compatible converter (_chinese_convert) ----------------------------------------
# A model of what the kernel computes (OpenCC 1.4.2's semantics, chinese_convert.h), slow and
# obvious: the fuzz target checks the kernel against it on random dictionaries and programs.
_CC_ALPHABET = ["a", "b", "x", "⿰", "⿱", "⿲", "⿾", "𠀀", " ", "\x00"]


def _cc_ids(s, p):
    count = [0]

    def consume(q, depth):
        if q >= len(s):
            return None, "incomplete"
        if depth == 0 or count[0] >= 64:
            return None, "invalid"
        count[0] += 1
        c = ord(s[q])
        arity = 0 if not 0x2FF0 <= c <= 0x2FFF else (
            3 if c in (0x2FF2, 0x2FF3) else 1 if c in (0x2FFE, 0x2FFF) else 2)
        q += 1
        for _ in range(arity):
            if q >= len(s):
                return None, "incomplete"
            q, st_ = consume(q, depth - 1)
            if st_ != "ok":
                return None, st_
        return q, "ok"

    if not 0x2FF0 <= ord(s[p]) <= 0x2FFF:
        return 0
    end, status = consume(p, 16)
    return end - p if status == "ok" else 0


def _cc_match(tree, dicts, s, p):
    if tree[0] == 0:
        best = (0, None)
        for k in range(1, len(s) - p + 1):
            v = dicts[tree[1]].get(s[p:p + k])
            if v is not None:
                best = (k, v)
        return best
    best = (0, None)
    for child in tree[2]:
        r = _cc_match(child, dicts, s, p)
        if tree[0] == 1:
            if best[0] == 0 and r[0] > 0:
                best = r
        elif r[0] > best[0]:
            best = r
    return best


def _cc_range(tree, dicts, s):
    out, p = [], 0
    while p < len(s):
        k, v = _cc_match(tree, dicts, s, p)
        if k:
            out.append(v)
            p += k
        else:
            n = _cc_ids(s, p) or 1
            out.append(s[p:p + n])
            p += n
    return "".join(out)


def _cc_model(norm, seg, chain, dicts, line):
    for t in norm:
        line = _cc_range(t, dicts, line)
    segments = [line] if line else []
    if seg is not None:
        segments, run, p = [], "", 0
        while p < len(line):
            k, _ = _cc_match(seg, dicts, line, p)
            if k:
                if run:
                    segments.append(run)
                    run = ""
                segments.append(line[p:p + k])
                p += k
            else:
                n = _cc_ids(line, p) or 1
                run += line[p:p + n]
                p += n
        if run:
            segments.append(run)
    for t in chain:
        segments = [_cc_range(t, dicts, x) for x in segments]
    return "".join(segments)


def _cc_flat(tree):
    if tree[0] == 0:
        return [0, tree[1]]
    out = [tree[0], len(tree[2])]
    for child in tree[2]:
        out += _cc_flat(child)
    return out


def _cc_arrays(entries):
    keys, values = list(entries), list(entries.values())

    def flat(strings):
        cps = np.array([ord(c) for x in strings for c in x], dtype=np.uint32)
        return cps, np.concatenate([[0], np.cumsum([len(x) for x in strings])]).astype(np.int64)

    return flat(keys) + flat(values)


_cc_text = st.lists(st.sampled_from(_CC_ALPHABET), max_size=8).map("".join)


def _cc_trees(n_dicts):
    leaf = st.builds(lambda d: (0, d), st.integers(0, n_dicts - 1))
    return st.recursive(leaf, lambda kids: st.builds(
        lambda kind, ch: (kind, None, ch), st.sampled_from([1, 2]),
        st.lists(kids, min_size=1, max_size=3)), max_leaves=5).map(
        lambda t: t if t[0] == 0 else (t[0], len(t[2]), t[2]))


@st.composite
def _cc_configs(draw):
    dicts = draw(st.lists(st.dictionaries(_cc_text.filter(bool), _cc_text, max_size=6),
                          min_size=1, max_size=3))
    trees = _cc_trees(len(dicts))
    norm = draw(st.lists(trees, max_size=1))
    seg = draw(st.none() | trees)
    chain = draw(st.lists(trees, max_size=2))
    return dicts, norm, seg, chain


@fuzz(300)
@given(_cc_configs(), st.lists(_cc_text | st.sampled_from(["\ud800", "a\udfffb", "\n"]),
                               max_size=8),
       st.sampled_from(["joined", "offsets"]), st.booleans())
def test_fuzz_chinese_convert(config, lines, mode, ws):
    """The converter against the model above: the same output, blocks where lengths differ and
    nowhere else, statuses (lone surrogate: 1, U+0000 under segmentation: 2, moved whitespace: 3)."""
    dicts, norm, seg, chain = config
    program = [len(norm), int(seg is not None), len(chain)]
    for t in norm + ([seg] if seg is not None else []) + chain:
        program += _cc_flat(t)
    conv = _chinese_convert.Converter([_cc_arrays(d) for d in dicts],
                                      np.array(program, np.int32))
    table = np.zeros(64, np.uint8)
    table[[9, 10, 32]] = 1
    table = table if ws else np.zeros(0, np.uint8)
    cps = np.array([ord(c) for c in "".join(lines)], dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lines])]).astype(np.int64)
    if mode == "joined" and lines:
        joined = np.array([ord(c) for c in "\x0b".join(lines)], dtype=np.uint32)
        if any("\x0b" in x for x in lines):
            return
        text, ends, blocks, status = conv.convert_joined(joined, len(lines), 11, table)
    else:
        text, ends, blocks, status = conv.convert(cps, offsets, 11, table)
    out = "".join(map(chr, text.tolist()))
    assert len(ends) == len(lines) + 1 and len(status) == len(lines)
    blocks = blocks.reshape(-1, 5)
    for i, line in enumerate(lines):
        start = int(ends[i]) + (1 if i else 0)
        got = out[start:int(ends[i + 1])]
        if any(0xD800 <= ord(c) <= 0xDFFF for c in line):
            assert status[i] == 1 and got == line
            continue
        if "\x00" in line and seg is not None:
            assert status[i] == 2 and got == line
            continue
        assert got == _cc_model(norm, seg, chain, dicts, line)
        mine = blocks[blocks[:, 0] == i, 1:].tolist()
        pi = pj = 0
        for a, b, c, d in mine:
            assert pi <= a < b <= len(line) and pj <= c <= d <= len(got) and a - pi == c - pj
            pi, pj = b, d
        assert len(line) - pi == len(got) - pj
        moved = not mine and ws and any((x in "\t\n ") != (y in "\t\n ")
                                        for x, y in zip(line, got))
        assert status[i] == (3 if moved else 0)


@fuzz(300)
@given(st.lists(st.integers(-3, 70) | int32s, max_size=12),
       st.lists(st.integers(0, 0x110001), max_size=10), st.lists(int64s, max_size=6),
       st.integers(-2, 12))
def test_fuzz_chinese_convert_bad_input(program, keys, offsets, n_lines):
    """Arbitrary programs, dictionary arrays and line offsets: a ValueError, or a converter and
    a conversion that keep their invariants."""
    koff = np.array(offsets or [0], np.int64)
    d = (np.array(keys, np.uint32), koff, np.array(keys, np.uint32), koff.copy())
    try:
        conv = _chinese_convert.Converter([d], np.array(program, np.int32))
    except ERRORS:
        return
    text = np.array([k % 0x110000 for k in keys] + [0x110000] * (n_lines % 2), np.uint32)
    line_offsets = np.array(offsets or [0], np.int64)
    try:
        out, ends, blocks, status = conv.convert(text, line_offsets)
    except ERRORS:
        return
    assert len(status) == len(line_offsets) - 1 and np.all(np.diff(ends) >= 0)
    try:
        conv.convert_joined(text, n_lines, 0)
    except ERRORS:
        pass


def test_fuzz_targets_cover_every_native_entry_point():
    """A new native function (or native module) must get a fuzz target here."""
    targets = {
        "_garden": {"build_garden", "rename_features", "_py_mask_garden"},
        "_wordpiece": {"FullTokenizer"},
        "_align": {"align_words"},
        "_chinese_convert": {"Converter"},  # convert, convert_joined
        "_instances": {"build_compat", "build_fast", "shuffled_order", "_py_pyrandom",
                       "_py_keyed_rng"},
        "_masking": {"sample_masks", "sample_ngram_masks"},
        "_tfrecord": {"serialize_into", "max_record_bytes", "frame_records", "crc32c"},
        "_records": {"index_records", "iter_records", "parse_example", "decode_bert_records",
                     "crc32c"},
        "_shard": {"Kernel", "Vocab", "Shard", "Chunk"},  # Shard, Chunk: made by Kernel only
        "_ltp_cws": {"Model"},  # from_avro_block, check_avro_block, from_arrays, segment
    }
    import importlib.machinery
    import pkgutil

    import wwm_fast

    native = {m.name for m in pkgutil.iter_modules(wwm_fast.__path__)
              if any(getattr(m.module_finder, "find_spec")(m.name).origin.endswith(suffix)
                     for suffix in importlib.machinery.EXTENSION_SUFFIXES)}
    assert native == set(targets), ("native modules without targets", native - set(targets))
    for module, names in targets.items():
        mod = getattr(wwm_fast, module) if hasattr(wwm_fast, module) else __import__(
            f"wwm_fast.{module}", fromlist=["_"])
        public = {n for n in dir(mod) if callable(getattr(mod, n)) and not n.startswith("__")
                  and getattr(getattr(mod, n), "__module__", f"wwm_fast.{module}") in (
                      f"wwm_fast.{module}", module, None)}
        public -= {"np", "numpy"}
        assert public <= names, (module, public - names)


@fuzz(100)
@given(st.integers(-2**62, 2**62), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.lists(st.tuples(st.sampled_from(["random", "randint", "getrandbits", "shuffle"]),
                          st.integers(-5, 70)), max_size=5))
def test_fuzz_small_entry_points(n, seed, shard, ops):
    """shuffled_order, the RNG shims, frame_records and max_record_bytes."""
    size = n % 100 if n % 3 else (-abs(n) if n % 2 else 2**32 + 1 + abs(n))  # no huge buffers
    try:
        order = _instances.shuffled_order(size, seed, shard)
        assert sorted(order.tolist()) == list(range(len(order)))
    except ERRORS:
        assert size < 0 or size > 2**32
    try:
        _instances._py_pyrandom([seed & 0xFFFFFFFF], ops)
    except ERRORS:
        assert any(op == "randint" and a < 0 or op == "getrandbits" and not 0 <= a <= 64
                   or op == "shuffle" and a < 0 for op, a in ops)
    payloads = [struct.pack("<q", n)] * (seed % 4)
    assert list(_records.iter_records(_tfrecord.frame_records(payloads), "f")) == payloads
    try:
        assert _tfrecord.max_record_bytes(n % 600, shard % 30) > 0
    except ERRORS:
        assert not (2 <= n % 600 and 1 <= shard % 30)
