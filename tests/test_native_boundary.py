"""Regression tests of the native boundary (issue 11): every crafted input that used to crash,
hang, over-read or abort now gives a ValueError / IndexError / TypeError naming the value.

The inputs are made here (tests/native_inputs.py); none needs the shared data. Inputs that used
to hang run in a child process with a timeout, so a regression fails instead of stalling the
suite.
"""

from __future__ import annotations

import mmap
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import wwm_fast
from wwm_fast import (_align, _garden, _instances, _masking, _records, _shard, _tfrecord,
                      _wordpiece)
from wwm_fast.tfrecord import read_bert_records, read_examples, read_records, serialize_instances

import native_inputs as ni


def _in_child(code: str, timeout: float = 60.0) -> str:
    """Runs `code` in a fresh interpreter (it must print OK); a hang or crash fails the test."""
    prelude = "import sys; sys.path.insert(0, %r)\n" % str(ni.__file__.rsplit("/", 1)[0])
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), (r.returncode, r.stdout,
                                                                   r.stderr[-3000:])
    return r.stdout


# -- TFRecord reader ---------------------------------------------------------------------------

def test_index_records_length_near_2_64_does_not_wrap(tmp_path):
    # 0: a valid length CRC on a length of 2^64 - 4: "length + 4" wrapped to 0 and the payload
    # CRC was read 2^64 bytes away (inspect segfaulted on this 76-byte file)
    data = ni.frame(b"x" * 60, length=2**64 - 4)
    assert len(data) == 76
    with pytest.raises(ValueError, match=r"f.tfrecord: record 0 at byte 0 is truncated: needs "
                                         r"18446744073709551628 bytes, 76 left"):
        _records.index_records(data, "f.tfrecord")
    path = tmp_path / "wrap.tfrecord"
    path.write_bytes(ni.frame(b"ok") + data)  # the bad record second: its index is named
    with pytest.raises(ValueError, match=r"wrap.tfrecord: record 1 at byte 18 is truncated"):
        list(read_records(path))
    with pytest.raises(ValueError, match=r"record 1 at byte 18 is truncated"):
        read_bert_records(path)
    for length in (2**64 - 1, 2**63, 2**63 - 1, 77, 61):
        with pytest.raises(ValueError, match="is truncated"):
            _records.index_records(ni.frame(b"x" * 48, length=length), "f")


HANGS_AND_OVERREADS = [
    # 0: a Features length of 2^64 - 11 became a negative size: parse_example looped forever
    b"\x0a" + ni.varint(2**64 - 11) + b"\0" * 16,
    # 1: a skipped field of 2^64 - 1000 bytes moved the position backwards (use-after-free)
    b"\x12" + ni.varint(2**64 - 1000),
    # 2-4: the same inside a map entry, a feature and a list
    ni.field(1, b"\x0a" + ni.varint(2**63) + b"\0" * 4),
    ni.field(1, ni.field(1, b"\x12" + ni.varint(2**64 - 2) + b"\0" * 8)),
    ni.field(1, ni.field(1, ni.field(1, b"k") + ni.field(2, b"\x1a" + ni.varint(2**63 + 5)))),
    # 5: an Int64List whose packed length runs past its list
    ni.field(1, ni.field(1, ni.field(1, b"k") + ni.field(2, ni.field(3, b"\x0a\x7f\x01")))),
]


@pytest.mark.parametrize("record", HANGS_AND_OVERREADS)
def test_parse_example_rejects_huge_lengths(record):
    with pytest.raises(ValueError, match="truncated|malformed"):
        _records.parse_example(record)


def test_parse_example_hang_inputs_return_in_a_child():
    _in_child(f"""
        from wwm_fast import _records
        for record in {HANGS_AND_OVERREADS!r}:
            try:
                _records.parse_example(record)
            except ValueError:
                pass
            else:
                raise SystemExit("accepted")
        print("OK")
    """)


def test_readers_name_file_and_record(tmp_path):
    # the 43-byte file of the issue: valid CRCs around the record that made inspect loop
    path = tmp_path / "hang.tfrecord"
    path.write_bytes(ni.frame(ni.bert_example(seq=1, pred=1)) + ni.frame(HANGS_AND_OVERREADS[0]))
    examples = read_examples(path)
    assert set(next(examples)) == set(wwm_fast.tfrecord.FEATURES)
    with pytest.raises(ValueError, match=r"hang.tfrecord: record 1: truncated Features in "
                                         r"tf.train.Example: 18446744073709551605 bytes"):
        next(examples)
    with pytest.raises(ValueError, match=r"hang.tfrecord record 1: truncated Features"):
        read_bert_records(path)


def _entry(key: bytes, value: bytes) -> bytes:
    return ni.field(1, ni.field(1, key) + ni.field(2, value))


@pytest.mark.parametrize("second, message", [
    # 0: a map entry longer than its Features (decode_bert_records did not check entry ends)
    (ni.field(1, b"\x0a" + ni.varint(500) + b"\0" * 12), "truncated feature map entry"),
    # 1: a key longer than its entry (the slice read past the record: MemoryError / over-read)
    (ni.field(1, ni.field(1, b"\x0a" + ni.varint(2**62) + b"input_ids")), "truncated feature"),
    # 2: a Features length of 2^63 + 3 (negative as a size)
    (b"\x0a" + ni.varint(2**63 + 3) + b"\0" * 200, "truncated Features"),
    # 3: a feature of the wrong type
    (ni.bert_example().replace(b"\x1a", b"\x0a", 1), "'input_ids' is a bytes list"),
    # 4: a missing feature
    (ni.field(1, ni.int64_feature("input_ids", [7]) + b"\0" * 10),
     r"missing features \['input_mask'"),
    # 5: another width
    (ni.bert_example(seq=2, pred=1), "'input_ids' has 2 values, record 0 has 1"),
])
def test_decode_bert_records_checks_every_offset(tmp_path, second, message):
    # record 0 is narrow (10 values), so every crafted record is long enough to be parsed
    data = ni.frame(ni.bert_example(seq=1, pred=1)) + ni.frame(second)
    with pytest.raises(ValueError, match=r"f.tfrecord record 1: .*" + message):
        _records.decode_bert_records(data, "f.tfrecord")


def test_decode_bert_records_bounds_its_arrays_before_allocating():
    # record 0 is wide, the 2,000 others tiny: n x width would be 2,000 x 60,000 x 8 bytes
    wide = ni.bert_example(seq=60_000)
    data = ni.frame(wide) + ni.frame(b"\0" * 16) * 2000
    with pytest.raises(ValueError, match=r"f record 1: 16 bytes cannot hold the 180007 feature "
                                         r"values of record 0"):
        _records.decode_bert_records(data, "f")


def test_decode_bert_records_reads_what_it_checks():
    data = ni.frame(ni.bert_example()) * 3
    out = _records.decode_bert_records(data, "f")
    assert out["input_ids"].shape == (3, 8) and out["masked_lm_weights"].dtype == np.float32
    np.testing.assert_array_equal(out["input_ids"][2], np.arange(1, 9))
    assert _records.parse_example(ni.bert_example())["masked_lm_weights"].tolist() == [1.0, 1.0]


# -- the serializer ------------------------------------------------------------------------------

def _serialize(inst: dict, order=None, *, seq=16, pred=4, c=None, threads=1):
    c = c or ni.corpus()
    order = np.arange(len(inst["a_start"]), dtype=np.int64) if order is None else order
    out = np.empty(1 << 16, np.uint8)
    return _tfrecord.serialize_into(c["ids"], inst, np.asarray(order, np.int64), seq, pred,
                                    ni.CLS, ni.SEP, out, threads)


def test_serialize_checks_pred_splits():
    ok = ni.instances([0, 5], [3, 3], [10, 0], [2, 0], preds=([0, 1, 2], [1, 2]))
    assert _serialize(ok)[1] == 2
    # 0: [0, -5] made "free(): invalid pointer" (an out-of-bounds write before the buffer)
    with pytest.raises(ValueError, match=r"pred_splits must run from 0 to len\(pred_positions\)"):
        _serialize(ni.instances([0], [3], [10], [2], preds=([0, -5], [])))
    # 1: not monotone inside, right ends: the pair of instance 1 is not a range
    bad = ni.instances([0, 5, 9], [3, 3, 3], [0, 0, 0], [0, 0, 0],
                       preds=([0, 3, 1, 4], [1, 2, 3, 1]))
    with pytest.raises(IndexError, match=r"instance 1: pred_splits\[1:3\] = 3, 1 is not a range of "
                                         r"the 4 predictions"):
        _serialize(bad)
    # 2: the three prediction arrays must agree
    short = dict(ok, pred_labels=ok["pred_labels"][:1])
    with pytest.raises(ValueError, match="array 'pred_labels' must have length 2, got 1"):
        _serialize(short)


MACBERT = np.array([0.4, 0.3, 0.2, 0.1])


def _ngram(c, inst, seq, pred, prob, whole_word, mask_id, rand_ids, threads):
    """sample_ngram_masks (issue 15) with sample_masks' arguments and MacBERT's table."""
    return _masking.sample_ngram_masks(c, inst, seq, pred, prob, whole_word, MACBERT, mask_id,
                                       rand_ids, threads)


# both native samplers: every sampler check below runs on each
SAMPLERS = pytest.mark.parametrize("sample", [_masking.sample_masks, _ngram],
                                   ids=["sample_masks", "sample_ngram_masks"])


@SAMPLERS
@pytest.mark.parametrize("field, value", [("a_start", 2**63 - 1), ("b_start", 2**63 - 1),
                                          ("a_start", -1), ("a_len", -3), ("b_len", 2**31 - 1)])
def test_instance_ranges_cannot_overflow(field, value, sample):
    # a_start near 2^63 with a_len 1 passed "a_start + a_len > n" by wrapping: ids[-1] was read
    inst = ni.instances([0], [1], [3], [1])
    inst[field][0] = value
    with pytest.raises(IndexError, match=r"instance 0 points outside the corpus: "
                                         + field[0] + r"_start"):
        _serialize(inst)
    with pytest.raises(IndexError, match=r"instance 0 points outside the corpus"):
        sample(ni.corpus(), inst, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1)


def test_huge_lengths_ahead_in_the_order_do_not_hang():
    # the prefetch loop ran "int32 x += 16" up to a_len near 2^31 (it never ended) for the
    # instances a few places ahead, before the bad instance itself was checked
    _in_child("""
        import numpy as np
        import native_inputs as ni
        from wwm_fast import _tfrecord
        c = ni.corpus()
        n = 10
        inst = ni.instances([0] * n, [2**31 - 1] * n, [0] * n, [2**31 - 1] * n)
        inst["a_len"][0] = inst["b_len"][0] = 1
        out = np.empty(1 << 16, np.uint8)
        try:
            _tfrecord.serialize_into(c["ids"], inst, np.arange(n, dtype=np.int64), 16, 4, 2, 3,
                                     out, 1)
        except IndexError as e:
            assert "instance 1 points outside the corpus" in str(e), e
        print("OK")
    """)


@SAMPLERS
def test_too_long_instances_are_rejected(sample):
    inst = ni.instances([0], [13], [20], [1])
    with pytest.raises(ValueError, match="instance 0 has 17 tokens > max_seq_length 16"):
        _serialize(inst)
    with pytest.raises(ValueError, match="instance 0 has 17 tokens > max_seq_length 16"):
        sample(ni.corpus(), inst, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1)


@pytest.mark.parametrize("seq, pred, message", [
    (16, 0, r"max_predictions_per_seq must be in \[1, 1048576\], got 0"),  # memcpy from null
    (16, -4, "max_predictions_per_seq must be in"),
    (1, 4, r"max_seq_length must be in \[2, 1048576\], got 1"),
    (2**20 + 1, 4, "max_seq_length must be in"),
])
def test_serializer_config_ranges(seq, pred, message):
    with pytest.raises(ValueError, match=message):
        _serialize(ni.instances([0], [2], [0], [0]), seq=seq, pred=pred)
    with pytest.raises(ValueError, match=message):
        _tfrecord.max_record_bytes(seq, pred)


def test_public_serializer_with_hand_built_instances(tmp_path):
    tok = wwm_fast.FullTokenizer(ni.write_vocab(tmp_path))
    c = ni.corpus()
    docs = wwm_fast.Documents(c["ids"], c["word_start"], c["sent_splits"], c["doc_splits"])
    d = ni.instances([0], [3], [10], [2], preds=([0, -5], []))
    d["group_hist"] = np.zeros(17, np.int64)
    inst = wwm_fast.Instances(**d)
    with pytest.raises(ValueError, match="pred_splits must run from 0"):
        b"".join(serialize_instances(docs, inst, tok, np.arange(1), max_seq_length=16,
                                     max_predictions_per_seq=4))
    with pytest.raises(ValueError, match="chunk_bytes must be an int >= 1, got 0"):
        next(serialize_instances(docs, inst, tok, np.arange(1), max_seq_length=16,
                                 max_predictions_per_seq=4, chunk_bytes=0))
    good = inst._replace(pred_splits=np.array([0, 1]), pred_positions=np.array([1], np.int32),
                         pred_input_ids=np.array([4], np.int32),
                         pred_labels=np.array([5], np.int32))
    # a chunk smaller than one record grows to one record (it used to be doubled from 1 byte)
    small = b"".join(serialize_instances(docs, good, tok, np.arange(1), max_seq_length=16,
                                         max_predictions_per_seq=4, chunk_bytes=1))
    assert small == b"".join(serialize_instances(docs, good, tok, np.arange(1), max_seq_length=16,
                                                 max_predictions_per_seq=4))
    ex = wwm_fast.tfrecord.parse_example(small[12:-4])
    assert ex["input_ids"].tolist() == [ni.CLS, ni.MASK, *c["ids"][1:3], ni.SEP, *c["ids"][10:12],
                                        ni.SEP] + [0] * 8


# -- the sampler and the builders ----------------------------------------------------------------

@pytest.mark.parametrize("split, message", [
    ("sent", "sent_splits must run from 0 to len"),
    ("sent_unsorted", "sentence 1 spans sent_splits 5 .. 5"),
    ("doc", "doc_splits must run from 0 to the number of sentences"),
    ("doc_unsorted", "document 0 spans"), ("empty", "must not be empty"),
])
def test_corpus_splits_are_checked_by_every_kernel(split, message):
    c = ni.corpus()
    if split == "sent":
        c["sent_splits"] = c["sent_splits"].copy()
        c["sent_splits"][-1] += 1
    elif split == "sent_unsorted":
        c["sent_splits"] = c["sent_splits"].copy()
        c["sent_splits"][2] = c["sent_splits"][1]
    elif split == "doc":
        c["doc_splits"] = c["doc_splits"][:-1].copy()
    elif split == "doc_unsorted":
        c["doc_splits"] = c["doc_splits"].copy()
        c["doc_splits"][1] = 0
    else:
        c["sent_splits"] = np.zeros(0, np.int64)
    inst = ni.instances([0], [2], [0], [0])
    calls = [
        lambda: _masking.sample_masks(c, inst, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1),
        lambda: _ngram(c, inst, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1),
        lambda: _instances.build_fast(c, 1, 0, 16, 4, 0.15, 0.1, 1, True, ni.RAND_IDS),
        lambda: _instances.build_compat(c, [1], 16, 4, 0.15, 0.1, 1, True, ni.CLS, ni.SEP,
                                        ni.MASK, ni.RAND_IDS),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()


def test_shard_kernel_checks_the_ngram_table():
    """The shard kernel checks ngram_probs itself (the Python side's parse_ngram_probs is not
    trusted): a bad table is a ValueError naming the value, a non-number a TypeError; the
    histograms are indexed by the drawn size, so a table longer than MAX_NGRAM_TABLE_SIZE must
    never reach the sampler."""
    vocab = _shard.Vocab(("\n".join(ni.VOCAB) + "\n").encode())
    args = (vocab, "[UNK]", True, 200, 16, 3, 0.15, 0.1, 2, True, True, 1)
    n_max = _shard.MAX_NGRAM_TABLE_SIZE
    assert n_max == _masking.MAX_NGRAM_TABLE_SIZE == 10
    for probs, message in (
            ([], r"1 to 10 entries, got 0"),
            ([0.1] * 11, r"1 to 10 entries, got 11"),
            ([1e-3] * 1000, r"1 to 10 entries, got 1000"),
            ([0.5, float("nan"), 0.5], r"size 2 must be a finite number >= 0, got nan"),
            ([float("inf")], r"size 1 must be a finite number >= 0, got inf"),
            ([1.5, -0.5], r"size 2 must be a finite number >= 0, got -0.5"),
            ([0.4, 0.3, 0.2], r"must sum to 1, got 0.9"),
            ([0.0, 0.0], r"must sum to 1, got 0.0"),
            ((0.5, 0.5 + 2e-5), r"must sum to 1, got 1.00002")):
        with pytest.raises(ValueError, match=message):
            _shard.Kernel(*args, ngram_probs=probs)
    for bad in ("0.5,0.5", [0.5, "0.5"], [0.5, None], 3):
        with pytest.raises(TypeError):
            _shard.Kernel(*args, ngram_probs=bad)
    # within the tolerance, any sequence of numbers (numpy, ints, a generator)
    for good in ((1,), np.array([0.4, 0.3, 0.2, 0.1]), (0.5, 0.5 + 5e-6), [0.1] * 10,
                 (p for p in (0.25, 0.75))):
        shard, err = _shard.Kernel(*args, ngram_probs=good).text_shard(
            " ".join(ni.VOCAB[5:]).encode() + b"\n", "strict", 0, 1)
        assert err is None and "masked_ngram_hist" in shard.figures()


@SAMPLERS
def test_sampler_rand_ids_must_be_1d(sample):
    # both bindings take their configuration from one helper (bind_masking.cc's SampleConfigOf)
    with pytest.raises(ValueError, match="rand_ids must be 1-D"):
        sample(ni.corpus(), ni.instances([0], [2], [0], [0]), 16, 4, 0.15, True, ni.MASK,
               ni.RAND_IDS.reshape(2, -1), 1)


def test_builder_config_ranges():
    c = ni.corpus()
    with pytest.raises(ValueError,
                       match=r"max_seq_length must be in \[5, 1048576\] .*got 2147483647"):
        _instances.build_fast(c, 1, 0, 2**31 - 1, 4, 0.15, 0.1, 1, True, ni.RAND_IDS)
    for sample in (_masking.sample_masks, _ngram):
        with pytest.raises(ValueError,
                           match=r"max_predictions_per_seq must be in \[1, 1048576\], got 0"):
            sample(c, ni.instances([0], [2], [0], [0]), 16, 0, 0.15, True, ni.MASK,
                   ni.RAND_IDS, 1)
        with pytest.raises(ValueError,
                           match=r"max_predictions_per_seq must be in .*got 2147483647"):
            sample(c, ni.instances([0], [2], [0], [0]), 16, 2**31 - 1, 0.15, True,
                   ni.MASK, ni.RAND_IDS, 1)  # reserved n x 2^31 predictions
        with pytest.raises(ValueError, match=r"max_seq_length must be in \[2, 1048576\], got 1"):
            sample(c, ni.instances([0], [2], [0], [0]), 1, 4, 0.15, True, ni.MASK,
                   ni.RAND_IDS, 1)
        with pytest.raises(ValueError, match=r"masked_lm_prob must be in \(0, 1\), got nan"):
            sample(c, ni.instances([0], [2], [0], [0]), 16, 4, float("nan"), True, ni.MASK,
                   ni.RAND_IDS, 1)
        with pytest.raises(ValueError, match="rand_ids"):
            sample(c, ni.instances([0], [2], [0], [0]), 16, 4, 0.15, True, ni.MASK,
                   np.zeros(0, np.int32), 1)
    with pytest.raises(ValueError, match=r"randint needs arg >= 0, got -1"):  # RandBelow(0) hung
        _instances._py_pyrandom([1], [("randint", -1)])
    with pytest.raises(ValueError, match=r"getrandbits needs arg in \[0, 64\], got 65"):
        _instances._py_pyrandom([1], [("getrandbits", 65)])
    with pytest.raises(ValueError, match=r"n must be in \[0, 2\^24\], got -1"):
        _instances._py_keyed_rng(1, -1, 0)


@SAMPLERS
def test_sampler_passes_any_id_through(sample):
    """The samplers marked a chosen position by a negative id: mask_id -1, a negative rand_ids
    entry or corpus id dropped predictions that pred_splits still counted (8 counted, 2 there).
    Ids are not indices in the samplers: any int32 passes through, as in Model Garden's."""
    c = ni.corpus()
    c = dict(c, ids=np.full_like(c["ids"], -3))
    inst = ni.instances([0, 10], [5, 5], [20, 30], [5, 5])
    seen = set()
    for key in range(20):
        inst["key"] = np.array([2 * key, 2 * key + 1], np.uint64)
        p = sample(c, inst, 16, 5, 0.3, True, -1, np.array([-7], np.int32), 1)
        assert p["pred_splits"].tolist() == [0, 4, 8]
        assert len(p["pred_positions"]) == len(p["pred_input_ids"]) == len(p["pred_labels"]) == 8
        assert (p["pred_labels"] == -3).all()
        assert set(p["pred_input_ids"].tolist()) <= {-1, -3, -7}
        seen |= set(p["pred_input_ids"].tolist())
    assert seen == {-1, -3, -7}


def test_pickled_arrays_are_accepted_and_give_the_same_output():
    # the dtype check compared by identity: an unpickled array's dtype is an equal, new object
    c = ni.corpus()
    built = _instances.build_fast(c, 7, 0, 16, 4, 0.15, 0.1, 2, True, ni.RAND_IDS)
    c2 = pickle.loads(pickle.dumps(c))
    built2 = pickle.loads(pickle.dumps(built))
    assert c2["ids"].dtype is not c["ids"].dtype and c2["ids"].dtype == c["ids"].dtype
    a = _masking.sample_masks(c, built, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1)
    b = _masking.sample_masks(c2, built2, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(TypeError, match=r"array 'ids' must be a C-contiguous int32 numpy array, "
                                        r"got <class 'numpy.ndarray'> of dtype >i4"):
        _masking.sample_masks(dict(c, ids=c["ids"].astype(">i4")), built, 16, 4, 0.15, True,
                              ni.MASK, ni.RAND_IDS, 1)


def test_kernels_keep_the_arrays_they_read_alive():
    """Another thread drops the dict's arrays while the kernel runs without the GIL: the kernel
    holds its own references (before, the 64 MB ids were unmapped under it)."""
    n_ids = 16 << 20
    c = ni.corpus(n_ids=n_ids, sentence=100, per_doc=50)
    n = 300_000
    starts = np.random.default_rng(0).integers(0, n_ids - 200, n)
    inst = ni.instances(starts, np.full(n, 60), starts + 70, np.full(n, 60))
    expected = _masking.sample_masks(dict(c), dict(inst), 128, 20, 0.15, True, ni.MASK,
                                     ni.RAND_IDS, 1)
    corpus_dict, inst_dict = dict(c), dict(inst)
    del c, inst
    result = {}

    def run():
        result["out"] = _masking.sample_masks(corpus_dict, inst_dict, 128, 20, 0.15, True,
                                              ni.MASK, ni.RAND_IDS, 1)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.02)
    corpus_dict.clear()  # the dicts held the only other references
    inst_dict.clear()
    t.join()
    for k in expected:
        np.testing.assert_array_equal(result["out"][k], expected[k])


# -- the tokenizer -------------------------------------------------------------------------------

def test_native_tokenizer_rejects_bad_vocab_ids():
    keys = ["[UNK]", "a"]
    with pytest.raises(IndexError, match="unk_id 5 is not one of the 2 vocab ids"):
        _wordpiece.FullTokenizer(keys, np.array([0, 1], np.int32), 5, True, 100)
    with pytest.raises(IndexError, match="unk_id -1 is not one of"):
        _wordpiece.FullTokenizer(keys, np.array([0, 1], np.int32), -1, True, 100)
    with pytest.raises(ValueError, match="ids must be >= 0, got -1 at index 1"):
        _wordpiece.FullTokenizer(keys, np.array([0, -1], np.int32), 0, True, 100)
    with pytest.raises(ValueError, match="keys and ids differ in length"):
        _wordpiece.FullTokenizer(keys, np.array([0], np.int32), 0, True, 100)


def test_line_longer_than_int32_offsets_is_an_error(tmp_path):
    """A 2 GiB line cannot have int32 code point offsets: a clear error before any work (a sparse
    file mapped read-only: no memory or disk is used)."""
    path = tmp_path / "sparse.txt"
    with open(path, "wb") as f:
        f.truncate(2**31 + 8)
    tok = wwm_fast.FullTokenizer(ni.write_vocab(tmp_path))
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        splits = np.array([0, 4, 2**31 + 4, 2**31 + 8], np.int64)
        with pytest.raises(ValueError, match=r"line 2 is 2147483648 bytes long; lines of at most "
                                             r"2147483646 bytes are supported"):
            tok._native.encode_buffer(m, splits, "strict", True, 1, True)
    assert _wordpiece.MAX_LINE_BYTES == 2**31 - 2


def test_encode_file_bytes_is_encode_file(tmp_path):
    tok = wwm_fast.FullTokenizer(ni.write_vocab(tmp_path))
    data = "ab 中国人\r\n\n!c，b\n".encode()
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    a = tok.encode_file(path)
    for b in (tok.encode_file_bytes(data), tok.encode_file_bytes(bytearray(data), num_threads=2),
              tok._encode_buffer(data, None, "strict", True, 1, source="x")):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    plain = tok.encode_file_bytes(data, with_offsets=False)
    np.testing.assert_array_equal(plain.ids, a.ids)
    assert len(plain.starts) == len(plain.ends) == 0
    with pytest.raises(ValueError, match=r"mem.txt: line 1: invalid UTF-8 b'\\xff'"):
        tok.encode_file_bytes(b"\xff\n", source="mem.txt")
    with pytest.raises(ValueError, match="errors must be one of"):
        tok.encode_file_bytes(data, errors="replace")


# -- one thread policy, one histogram length -----------------------------------------------------

def test_one_thread_policy():
    from wwm_fast import _threads
    from wwm_fast.tokenization import _resolve_threads

    assert _threads.MAX_THREADS == 256
    assert _align.MAX_THREADS == _masking.MAX_THREADS == _tfrecord.MAX_THREADS == 256
    assert _resolve_threads is _threads.check_num_threads
    assert _threads.check_num_threads(-1) == -1 and _threads.check_num_threads(np.int64(3)) == 3
    assert 1 <= _threads.resolve_num_threads(-1) <= 256
    assert _threads.resolve_num_threads(256) == 256
    for bad in (0, -2, 257, 2**31, 10**20):
        with pytest.raises(ValueError, match=rf"num_threads must be -1 \(all cores\) or in "
                                             rf"\[1, 256\], got {bad}"):
            _threads.resolve_num_threads(bad)
    for bad in (True, 1.0, "2", None):
        with pytest.raises(TypeError, match="num_threads must be an int"):
            _threads.resolve_num_threads(bad)
    with pytest.raises(ValueError, match="num_workers must be -1"):
        _threads.check_num_threads(0, "num_workers")
    # the kernels cap whatever reaches them (here 10^6 threads asked of the native aligner)
    one = np.zeros(1, np.int32)
    ws, fb = np.empty(1, np.uint8), np.empty(1, np.uint8)
    splits = np.array([0, 1], np.int64)
    assert _align.align_words(one, one + 1, np.zeros(1, np.uint8), splits, one, one + 1, splits,
                              ws, fb, 10**6) == 0


def test_word_size_histogram_length_is_defined_once():
    from wwm_fast.masking import WORD_SIZE_HIST_LEN

    assert WORD_SIZE_HIST_LEN == _masking.WORD_SIZE_HIST_LEN == _instances.WORD_SIZE_HIST_LEN == 17
    c = ni.corpus()
    fast = _instances.build_fast(c, 1, 0, 16, 4, 0.15, 0.1, 1, True, ni.RAND_IDS)
    preds = _masking.sample_masks(c, fast, 16, 4, 0.15, True, ni.MASK, ni.RAND_IDS, 1)
    compat = _instances.build_compat(c, [1], 16, 4, 0.15, 0.1, 1, True, ni.CLS, ni.SEP, ni.MASK,
                                     ni.RAND_IDS)
    assert len(preds["group_hist"]) == len(compat["group_hist"]) == WORD_SIZE_HIST_LEN


# -- Model Garden compat (_garden) ---------------------------------------------------------------

V2 = [("input_ids", "input_word_ids"), ("segment_ids", "input_type_ids")]


def test_rename_features_lengths_near_2_64_do_not_wrap():
    """The renamer reads the framing itself: a record length near 2^64 with a valid length CRC,
    and field lengths near 2^64 inside a record with valid CRCs, are truncation errors that name
    the record and its byte offset."""
    good = ni.frame(ni.bert_example(seq=3, pred=1))
    for length in (2**64 - 4, 2**64 - 1, 2**63, 2**32):
        data = np.frombuffer(good + ni.frame(b"x" * 48, length=length), np.uint8)
        with pytest.raises(ValueError, match=rf"record 1 at byte {len(good)}: truncated \(length "
                                             rf"{length}, 52 bytes left\)"):
            _garden.rename_features(data, V2)
    for payload in (b"\x0a" + ni.varint(2**64 - 11) + b"\0" * 16,  # Features length
                    b"\x0a\x0c\x0a" + ni.varint(2**63) + b"\0",  # map entry length
                    b"\x12" + ni.varint(2**64 - 1000),  # an unknown field's length
                    b"\x0a\x02\x0a\xff",  # a truncated varint
                    b"\x0a\x0c\x0a" + b"\xff" * 10 + b"\x01"):  # a varint of 11 bytes
        with pytest.raises(ValueError, match=r"record 0 at byte 0: (truncated|varint longer)"):
            _garden.rename_features(np.frombuffer(ni.frame(payload), np.uint8), V2)


def test_rename_features_refuses_to_merge_two_features():
    """A record holding both input_ids and input_word_ids: renaming would leave two entries of one
    name (protobuf keeps the last, silently); refused, naming both. Two entries of one name that
    renaming does not touch are passed on as they are."""
    both = ni.frame(ni.bert_example(seq=2, pred=1, v2="both"))
    good = ni.frame(ni.bert_example(seq=2, pred=1))
    with pytest.raises(ValueError, match=rf"record 1 at byte {len(good)}: features 'input_ids' "
                                         r"and 'input_word_ids' would both be named "
                                         r"'input_word_ids'"):
        _garden.rename_features(np.frombuffer(good + both, np.uint8), V2)
    same = np.frombuffer(both, np.uint8)
    assert _garden.rename_features(same, [("masked_lm_ids", "m")]).tobytes() != both
    assert _garden.rename_features(same, []).tobytes() == both
    # a swap merges nothing: every feature keeps its own values under the other's name
    swapped = _garden.rename_features(np.frombuffer(good, np.uint8),
                                      [("input_ids", "segment_ids"), ("segment_ids", "input_ids")])
    ex = _records.parse_example(bytes(swapped[12:-4]))
    assert ex["segment_ids"].tolist() == [1, 2] and ex["input_ids"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="records must be a 1-D uint8 array"):
        _garden.rename_features(np.zeros((2, 2), np.uint8), V2)
    with pytest.raises(TypeError):
        _garden.rename_features(np.zeros(4, np.int8), V2)


def _mask_garden(tokens, **kw):
    args = dict(special=[1] + [0] * (len(tokens) - 2) + [1], joins=[0] * len(tokens),
                whole_word=True, seed_key=[1], global_seed_key=[2], max_predictions=len(tokens),
                masked_lm_prob=0.5, mask_id=ni.MASK, rand_ids=ni.RAND_IDS, max_ngram_size=2,
                repeats=1)
    args.update(kw)
    return _garden._py_mask_garden(tokens, **args)


def test_garden_masking_checks_its_arguments():
    tokens = [ni.CLS, 5, 6, 7, 8, ni.SEP]
    with pytest.raises(ValueError, match=r"tokens, special and joins must have the same length, "
                                         r"got 6, 5, 6"):
        _mask_garden(tokens, special=[1, 0, 0, 0, 1])
    for bad, match in ((0, r"max_ngram_size must be in \[1, 1048576\], got 0"),
                       (2**20 + 1, r"got 1048577"),
                       (2**20, r"max_ngram_size \* max_seq_length must be at most 16777216 .* got "
                               r"1048576 \* 17")):
        with pytest.raises(ValueError, match=match):
            _mask_garden(tokens + [5] * 11, max_ngram_size=bad)
    for bad in (-1, 2**24 + 1, 2**40):
        with pytest.raises(ValueError, match=rf"repeats must be in \[0, 2\^24\], got {bad}"):
            _mask_garden(tokens, repeats=bad)
    with pytest.raises(ValueError, match="max_predictions_per_seq must be in"):
        _mask_garden(tokens, max_predictions=0)
    with pytest.raises(ValueError, match="rand_ids .* must not be empty"):
        _mask_garden(tokens, rand_ids=np.zeros(0, np.int32))
    with pytest.raises(ValueError, match="rand_ids must be 1-D"):
        _mask_garden(tokens, rand_ids=ni.RAND_IDS.reshape(2, -1))
    with pytest.raises(TypeError):
        _mask_garden(tokens, rand_ids=ni.RAND_IDS.astype(np.int64))


def test_garden_masking_passes_any_id_through():
    """Chosen positions are tracked apart from the ids: negative token, [MASK] and replacement ids
    (a hand-made call; the corpus never has them) are reported like any other, none dropped."""
    tokens = [ni.CLS, -5, -6, -7, -8, -9, -10, ni.SEP]
    calls, _, _ = _mask_garden(tokens, mask_id=-1, rand_ids=np.array([-3], np.int32),
                               max_predictions=6, masked_lm_prob=0.999, repeats=50)
    for positions, shown, labels in calls:
        assert len(positions) == 6 and positions == list(range(1, 7))
        assert labels == tokens[1:7]
        assert all(v in (-1, -3, t) for v, t in zip(shown, labels))
    assert {v for _, shown, _ in calls for v in shown} >= {-1, -3}


def test_build_garden_bounds_the_ngram_work():
    """Model Garden lists every n-gram of every size: max_ngram_size x max_seq_length is bounded
    (MAX_NGRAM_WORK) before any work, in the kernel and in the Python options."""
    from wwm_fast import compat_garden

    assert _garden.MAX_NGRAM_WORK == 2**24
    c = ni.corpus()
    args = (c, [1], [1])
    tail = (0.15, 0.1, 1, True)
    specials = (ni.CLS, ni.SEP, ni.MASK, ni.RAND_IDS)
    with pytest.raises(ValueError, match=r"max_ngram_size \* max_seq_length must be at most "
                                         r"16777216 .*got 4096 \* 8192"):
        _garden.build_garden(*args, 8192, 20, *tail, 4096, *specials)
    with pytest.raises(ValueError, match=r"max_ngram_size must be in \[1, max_seq_length - 3 = "
                                         r"13\], got 14"):
        _garden.build_garden(*args, 16, 4, *tail, 14, *specials)
    with pytest.raises(ValueError, match="max_seq_length"):
        _garden.build_garden(*args, 2**20 + 1, 20, *tail, 2, *specials)
    with pytest.raises(TypeError):  # not an int32: pybind11 refuses before the kernel
        _garden.build_garden(*args, 2**31, 20, *tail, 2, *specials)
    out = _garden.build_garden(*args, 16, 4, *tail, 13, *specials)
    assert len(out["a_start"]) > 0
    # the Python options: max_ngram_size <= MAX_NGRAM_SIZE (wwm_fast/_limits.py) keeps the
    # product within the kernel's bound for every max_seq_length up to MAX_SEQ_LENGTH; a longer
    # max_seq_length (build_garden_instances does not cap it) meets the product check
    from wwm_fast._limits import MAX_NGRAM_SIZE, MAX_SEQ_LENGTH

    assert MAX_NGRAM_SIZE * MAX_SEQ_LENGTH <= _garden.MAX_NGRAM_WORK
    opts = dict(mode="compat", reference="garden", use_v2_feature_names=False,
                garden_global_seed=None, do_whole_word_mask=True, random_seed=1)
    with pytest.raises(ValueError, match=r"max_ngram_size must be in \[1, 2048\], got 4096"):
        compat_garden.check_options(max_ngram_size=4096, max_seq_length=8192, **opts)
    with pytest.raises(ValueError, match=r"at this max_seq_length max_ngram_size can be at most "
                                         r"1024"):
        compat_garden.check_options(max_ngram_size=2048, max_seq_length=16384, **opts)
