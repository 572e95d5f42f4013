"""Documents, the instance builders and the whole-word sampler, below create_instances."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wwm_fast
from wwm_fast import _instances
from wwm_fast.instances import (build_instances, documents_from_encoding, shuffled_order,
                                _seed_key)
from wwm_fast.masking import sample_masks


@pytest.fixture(scope="module")
def tok(vocab_file):
    return wwm_fast.FullTokenizer(vocab_file)


# -- CPython's random, replayed natively ------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-2**70, max_value=2**70),
       st.lists(st.tuples(st.sampled_from(["random", "randint", "getrandbits", "shuffle"]),
                          st.integers(min_value=0, max_value=2**33)), max_size=40))
def test_pyrandom_replays_cpython(seed, ops):
    ops = [(op, arg % 64 + 1 if op == "getrandbits" else arg % 300 if op == "shuffle" else arg)
           for op, arg in ops]
    ref = random.Random(seed)
    expected = []
    for op, arg in ops:
        if op == "random":
            expected.append(ref.random())
        elif op == "randint":
            expected.append(ref.randint(0, arg))
        elif op == "getrandbits":
            expected.append(ref.getrandbits(arg))
        else:
            x = list(range(arg))
            ref.shuffle(x)
            expected.append(x)
    assert _instances._py_pyrandom(_seed_key(seed), ops) == expected


def test_keyed_rng_is_uniform_and_keyed():
    a = np.array(_instances._py_keyed_rng(7, 200_000, 10))
    counts = np.bincount(a, minlength=10)
    chi2 = ((counts - 20_000) ** 2 / 20_000).sum()
    assert chi2 < 40  # 9 dof, p ~ 5e-6
    assert _instances._py_keyed_rng(7, 5, 0) == _instances._py_keyed_rng(7, 5, 0)
    assert _instances._py_keyed_rng(7, 5, 0) != _instances._py_keyed_rng(8, 5, 0)


# -- documents ---------------------------------------------------------------------------------------

def test_documents_follow_googles_reader(tok):
    lines = ["第一句。", "第二句。", "", "  ", "\x01", "第三句。", "", "", "第四句。"]
    docs = documents_from_encoding(tok.encode_batch(lines))
    # blank (whitespace-only) lines end documents; "\x01" has no token and is skipped without
    # ending one; empty documents disappear
    assert docs.n_sentences == 4
    assert docs.doc_splits.tolist() == [0, 2, 3, 4]
    assert docs.sent_splits.tolist() == [0, 4, 8, 12, 16]


# -- the fast builder -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pd_docs(tok, people_daily_lines):
    enc = tok.encode_batch(people_daily_lines[:6000])
    return documents_from_encoding(enc, 1 - tok.is_subword(enc.ids))


@pytest.mark.parametrize("next_sentence", [True, False])
def test_fast_instances_are_well_formed(tok, pd_docs, next_sentence):
    docs = pd_docs
    inst = build_instances(docs, tok, mode="fast", dupe_factor=2, max_seq_length=64,
                           max_predictions_per_seq=10, next_sentence=next_sentence)
    extra = 3 if next_sentence else 2
    assert np.all(inst.a_len + inst.b_len + extra <= 64) and np.all(inst.a_len >= 1)
    doc_of_token = np.repeat(np.repeat(np.arange(docs.n_documents), np.diff(docs.doc_splits)),
                             np.diff(docs.sent_splits))
    a_doc = doc_of_token[inst.a_start]
    assert np.all(doc_of_token[inst.a_start + inst.a_len - 1] == a_doc)  # A within a document
    if next_sentence:
        assert np.all(inst.b_len >= 1)
        b_doc = doc_of_token[inst.b_start]
        assert np.all(doc_of_token[inst.b_start + inst.b_len - 1] == b_doc)
        rnd = inst.next_label == 1
        assert np.all(b_doc[rnd] != a_doc[rnd])  # a random next comes from another document
        assert np.all(b_doc[~rnd] == a_doc[~rnd])
        # an actual next follows A (truncation may trim A's end and B's start)
        assert np.all(inst.b_start[~rnd] >= inst.a_start[~rnd] + inst.a_len[~rnd])
        # Google: 50% of multi-sentence chunks, and single-sentence chunks are always random
        assert 0.5 < rnd.mean() < 0.75
    else:
        assert not inst.b_len.any() and not inst.next_label.any()
    assert len(np.unique(inst.key)) == inst.n
    order = shuffled_order(inst.n, 12345, 0)
    assert sorted(order.tolist()) == list(range(inst.n)) and not np.all(order == np.arange(inst.n))


def test_fast_depends_on_seed_and_shard_only(tok, pd_docs):
    a = build_instances(pd_docs, tok, mode="fast", dupe_factor=1, shard=3)
    b = build_instances(pd_docs, tok, mode="fast", dupe_factor=1, shard=3)
    c = build_instances(pd_docs, tok, mode="fast", dupe_factor=1, shard=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.key, c.key)


# -- the sampler ---------------------------------------------------------------------------------------

def test_sampler_threads_agree_and_counts_follow_google(tok, pd_docs):
    inst = build_instances(pd_docs, tok, mode="fast", dupe_factor=2)
    one = sample_masks(pd_docs, inst, tok, num_threads=1)
    two = sample_masks(pd_docs, inst, tok, num_threads=2)
    for f in ("pred_splits", "pred_positions", "pred_input_ids", "pred_labels", "group_hist"):
        np.testing.assert_array_equal(getattr(one, f), getattr(two, f))
    lengths = inst.a_len + inst.b_len + 3
    # Google's count: min(20, max(1, round_half_even(len * 0.15))); whole words may fall short
    expected = np.minimum(20, np.maximum(1, np.round(lengths * 0.15).astype(int)))
    made = np.diff(one.pred_splits)
    assert np.all(made <= expected) and (made == expected).mean() > 0.95


@pytest.mark.parametrize("length,expected", [(30, 4), (10, 2), (70, 10), (128, 19), (5, 1)])
def test_round_half_even(tok, length, expected):
    """30*0.15=4.5 -> 4, 10*0.15=1.5 -> 2, 70*0.15=10.5 -> 10 (Python 3 round)."""
    docs = documents_from_encoding(tok.encode_batch(["好" * (length - 3)]))
    one = lambda v, t: np.array([v], t)  # noqa: E731
    inst = wwm_fast.Instances(  # [CLS] A (length-4 tokens) [SEP] B (1 token) [SEP]
        a_start=one(0, np.int64), a_len=one(length - 4, np.int32),
        b_start=one(length - 4, np.int64), b_len=one(1, np.int32), next_label=one(0, np.uint8),
        key=one(1, np.uint64), pred_splits=np.zeros(2, np.int64),
        pred_positions=np.zeros(0, np.int32), pred_input_ids=np.zeros(0, np.int32),
        pred_labels=np.zeros(0, np.int32), group_hist=np.zeros(17, np.int64))
    out = sample_masks(docs, inst, tok, do_whole_word_mask=False, max_seq_length=length)
    assert len(out.pred_positions) == expected


def test_every_position_gets_masked_over_seeds_and_never_specials(tok):
    enc = tok.encode_batch(["一二三四五六七八", "九十"])
    docs = documents_from_encoding(enc)
    seen = np.zeros(128, int)
    for seed in range(400):
        inst = build_instances(docs, tok, mode="fast", dupe_factor=1, random_seed=seed,
                               short_seq_prob=0.0)
        out = sample_masks(docs, inst, tok, do_whole_word_mask=False)
        for i in range(inst.n):
            pos = out.pred_positions[out.pred_splits[i]:out.pred_splits[i + 1]]
            length = inst.a_len[i] + inst.b_len[i] + 3
            specials = {0, inst.a_len[i] + 1, length - 1}
            assert not specials & set(pos.tolist()) and len(set(pos.tolist())) == len(pos)
            seen[pos] += 1
    assert (seen[1:9] > 0).all()  # every position of A (一..八) is masked for some seed
    assert seen[0] == 0


def test_eighty_ten_ten_per_token(tok, pd_docs):
    inst = build_instances(pd_docs, tok, mode="fast", dupe_factor=2)
    out = sample_masks(pd_docs, inst, tok, do_whole_word_mask=True)
    shown, label = out.pred_input_ids, out.pred_labels
    mask = (shown == 103).mean()
    keep = ((shown == label) & (shown != 103)).mean()
    assert abs(mask - 0.8) < 0.01 and abs(keep - 0.1) < 0.01
    rand = shown[(shown != label) & (shown != 103)]
    assert len(np.unique(rand)) > 0.3 * len(rand)  # spread over the whole vocab


def test_sampler_input_errors(tok, pd_docs):
    inst = build_instances(pd_docs, tok, mode="fast", dupe_factor=1)
    bad = inst._replace(a_start=inst.a_start + 10**9)
    with pytest.raises(IndexError, match="points outside the corpus"):
        sample_masks(pd_docs, bad, tok)
    with pytest.raises(ValueError, match="array 'key' must have length"):
        sample_masks(pd_docs, inst._replace(key=inst.key[:-1]), tok)
    with pytest.raises(TypeError, match="array 'a_start' must be a C-contiguous int64"):
        sample_masks(pd_docs, inst._replace(a_start=inst.a_start.astype(np.int32)), tok)
    with pytest.raises(ValueError, match="num_threads must be -1"):
        sample_masks(pd_docs, inst, tok, num_threads=0)
