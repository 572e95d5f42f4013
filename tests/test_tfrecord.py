"""The TFRecord writer (C++) and reader (Cython) against TensorFlow and against each other."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import wwm_fast
from wwm_fast import _records, _tfrecord
from wwm_fast.tfrecord import parse_example, read_bert_records, read_records

from google_oracle import run_google, tf_read


def test_crc32c_known_vectors():
    # RFC 3720 B.4 / the usual check value
    for impl in (_tfrecord.crc32c, lambda b: _records.crc32c(b)):
        assert impl(b"123456789") == 0xE3069283
        assert impl(b"\x00" * 32) == 0x8A9136AA
        assert impl(b"\xff" * 32) == 0x62A8AB43
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 9, 63, 1000):  # hardware/software paths and tails agree
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert _tfrecord.crc32c(data) == (_records.crc32c(data) if n else 0)


def test_framing_matches_tensorflow(tmp_path):
    import tensorflow as tf

    payloads = [b"", b"a", b"hello world" * 100]
    ours = tmp_path / "ours.tfrecord"
    ours.write_bytes(_tfrecord.frame_records(payloads))
    theirs = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for p in payloads:
            w.write(p)
    assert ours.read_bytes() == theirs.read_bytes()
    assert list(read_records(theirs)) == payloads


@pytest.fixture(scope="module")
def google_file(tmp_path_factory, vocab_file, reviews_lines):
    folder = tmp_path_factory.mktemp("google")
    text = folder / "in.txt"
    text.write_text("\n".join(reviews_lines[:800]) + "\n", encoding="utf-8")
    out = folder / "google.tfrecord"
    run_google([str(text)], [str(out)], vocab_file, max_seq_length=128,
               max_predictions_per_seq=20, dupe_factor=1)
    return out


def test_reader_decodes_google_output_like_tensorflow(google_file):
    """Google's file (protobuf map order of its own): our decoders give TensorFlow's values."""
    ref = tf_read(google_file, 128, 20)
    batch = read_bert_records(google_file)
    for k in ref:
        np.testing.assert_array_equal(batch[k], ref[k])
    one = [parse_example(r) for r in read_records(google_file)]
    np.testing.assert_array_equal(np.stack([x["input_ids"] for x in one]), ref["input_ids"])


def test_corrupt_and_truncated_files_name_the_record(google_file, tmp_path):
    data = bytearray(google_file.read_bytes())
    first_len = struct.unpack("<Q", data[:8])[0]
    second = 16 + first_len
    bad = tmp_path / "bad.tfrecord"
    corrupt = bytearray(data)
    corrupt[second + 12 + 5] ^= 0xFF  # a payload byte of record 1
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match=r"bad\.tfrecord: record 1 at byte \d+: data CRC mismatch"):
        list(read_records(bad))
    with pytest.raises(ValueError, match="record 1 .*data CRC mismatch"):
        read_bert_records(bad)
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(bytes(data[:second + 30]))
    with pytest.raises(ValueError, match=r"cut\.tfrecord: record 1 at byte \d+ is truncated"):
        list(read_records(cut))
    text = tmp_path / "text.tfrecord"
    text.write_text("not a tfrecord file at all\n")
    with pytest.raises(ValueError, match="record 0 at byte 0: length CRC mismatch"):
        list(read_records(text))


def test_non_bert_examples_are_rejected(tmp_path):
    import tensorflow as tf

    path = tmp_path / "other.tfrecord"
    ex = tf.train.Example(features=tf.train.Features(feature={
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2]))}))
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(ex.SerializeToString())
    assert parse_example(next(iter(read_records(path))))["input_ids"].tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"record 0: not a BERT pre-training example \(no feature "
                                         r"'input_mask'\)"):
        read_bert_records(path)


def test_serializer_rejects_bad_instances(vocab_file):
    tok = wwm_fast.FullTokenizer(vocab_file)
    enc = tok.encode_batch(["中国人民", "你好"])
    docs = wwm_fast.instances.documents_from_encoding(enc)
    inst = wwm_fast.build_instances(docs, tok, mode="compat", dupe_factor=1)
    from wwm_fast.tfrecord import serialize_instances
    with pytest.raises(ValueError, match="tokens > max_seq_length 6"):
        b"".join(serialize_instances(docs, inst, tok, np.arange(inst.n), max_seq_length=6,
                                     max_predictions_per_seq=20))
    with pytest.raises(IndexError, match="instance index 5 out of range"):
        b"".join(serialize_instances(docs, inst, tok, np.array([5]), max_seq_length=128,
                                     max_predictions_per_seq=20))
    bad = inst._replace(pred_positions=np.full_like(inst.pred_positions, 60))
    with pytest.raises(IndexError, match="prediction position 60 outside the tokens"):
        b"".join(serialize_instances(docs, bad, tok, np.arange(inst.n), max_seq_length=128,
                                     max_predictions_per_seq=20))
    with pytest.raises(TypeError, match="array 'a_len' must be a C-contiguous int32"):
        b"".join(serialize_instances(docs, inst._replace(a_len=inst.a_len.astype(np.int64)), tok,
                                     np.arange(inst.n), max_seq_length=128,
                                     max_predictions_per_seq=20))


def test_inspect_cli(google_file, vocab_file, capsys):
    from wwm_fast.cli import main
    from wwm_fast.commands.inspect import summarize

    assert main(["inspect", str(google_file), "--vocab_file", vocab_file, "--max_records", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 2 and "[MASK](" in out and "segments: 0" in out
    assert main(["inspect", str(google_file), "--stats"]) == 0
    assert "records in 1 file(s) (all CRCs valid)" in capsys.readouterr().out
    s = summarize([str(google_file)])
    ref = tf_read(google_file, 128, 20)
    assert s["records"] == len(ref["input_ids"])
    assert s["predictions"] == int(ref["masked_lm_weights"].sum())
    assert s["random_next_fraction"] == pytest.approx(ref["next_sentence_labels"].mean())
    assert 0.78 < s["mask_fraction"] < 0.82


@pytest.mark.parametrize("seq,preds", [(128, 20), (512, 77)])
def test_threaded_serializer_writes_the_same_bytes(vocab_file, people_daily_lines, seq, preds):
    """Threads write pieces into regions sized by the record bound, then close them up: the bytes
    equal the serial writer's, and no record exceeds the bound. Chunks of 2,000 records' bound
    allow up to 7 threads (at least 256 records each)."""
    from wwm_fast.tfrecord import serialize_instances

    tok = wwm_fast.FullTokenizer(vocab_file)
    docs = wwm_fast.instances.documents_from_encoding(tok.encode_batch(people_daily_lines[:20000]))
    inst = wwm_fast.build_instances(docs, tok, mode="fast", dupe_factor=2, max_seq_length=seq,
                                    max_predictions_per_seq=preds)
    inst = wwm_fast.sample_masks(docs, inst, tok, max_seq_length=seq,
                                 max_predictions_per_seq=preds)
    order = wwm_fast.instances.shuffled_order(inst.n, 7, 0)
    bound = _tfrecord.max_record_bytes(seq, preds)

    def chunks(threads, chunk_bytes=1 << 20):
        return [bytes(c) for c in serialize_instances(
            docs, inst, tok, order, max_seq_length=seq, max_predictions_per_seq=preds,
            chunk_bytes=chunk_bytes, num_threads=threads)]

    serial = b"".join(chunks(1))
    sizes = [len(r) + 16 for r in read_records_bytes(serial)]
    assert len(sizes) == inst.n and max(sizes) <= bound
    assert inst.n > 2000 + 7 * 256  # several chunks, the last one still threaded
    for threads in (2, 3, 7, -1):
        parts = chunks(threads, chunk_bytes=bound * 2000)
        assert len(parts) == -(-inst.n // 2000)  # a threaded chunk holds exactly 2,000 records
        assert b"".join(parts) == serial


def read_records_bytes(data: bytes):
    at = 0
    while at < len(data):
        (n,) = struct.unpack_from("<Q", data, at)
        yield data[at + 12:at + 12 + n]
        at += n + 16


def test_threaded_serializer_reports_errors_of_any_thread(vocab_file, people_daily_lines):
    from wwm_fast.tfrecord import serialize_instances

    tok = wwm_fast.FullTokenizer(vocab_file)
    docs = wwm_fast.instances.documents_from_encoding(tok.encode_batch(people_daily_lines[:3000]))
    inst = wwm_fast.build_instances(docs, tok, mode="fast", dupe_factor=1)
    inst = wwm_fast.sample_masks(docs, inst, tok)
    bad_at = inst.n - 3  # in the last thread's piece
    positions = inst.pred_positions.copy()
    positions[inst.pred_splits[bad_at]] = 500
    bad = inst._replace(pred_positions=positions)
    with pytest.raises(IndexError, match=f"instance {bad_at}: prediction position 500 outside"):
        b"".join(serialize_instances(docs, bad, tok, np.arange(inst.n), max_seq_length=128,
                                     max_predictions_per_seq=20, num_threads=2))
