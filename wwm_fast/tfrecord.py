"""TFRecord output and input (stage 6 of the data flow): native writer, Cython reader.

Writing needs neither TensorFlow nor protobuf: ``serialize_instances`` produces framed
``tf.train.Example`` records with Google's seven features in a fixed order (so bytes are
deterministic), and ``write_records`` puts them on disk atomically, optionally GZIP-compressed
(``tf.data.TFRecordDataset(path, compression_type="GZIP")`` reads those).

Reading (``read_records`` / ``read_examples`` / ``parse_example``, used by ``wwm-fast inspect``)
verifies both CRCs of every record and decodes the int64/float features into numpy arrays. Every
reader trusts nothing in the file: a bad length, CRC or protobuf field is a ValueError naming the
file and the record.
"""

from __future__ import annotations

import os
import zlib
from typing import Dict, Iterator

import numpy as np

from . import _check_build  # noqa: F401
from . import _tfrecord
from ._threads import resolve_num_threads
from .files import write_records  # noqa: F401  (re-exported; it lives with the atomic outputs)
from .instances import Documents, Instances, special_ids
from .tokenization import FullTokenizer

__all__ = ["FEATURES", "serialize_instances", "write_records", "read_records", "read_examples",
           "read_bert_records", "parse_example"]

# run_pretraining.py's parse spec, in the order the writer emits them.
FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
            "masked_lm_weights", "next_sentence_labels")

_GZIP_MAGIC = b"\x1f\x8b"


def serialize_instances(docs: Documents, instances: Instances, tokenizer: FullTokenizer,
                        order: np.ndarray, *, max_seq_length: int, max_predictions_per_seq: int,
                        chunk_bytes: int = 4 << 20, num_threads: int = 1) -> Iterator[memoryview]:
    """Framed TFRecord bytes of ``instances[order[k]]`` for each k, in chunks.

    The chunks are views of three buffers used in turn: a chunk stays valid while the next two
    are made, which is what ``write_records``' writer thread needs; a plain consumer just writes
    each chunk before asking for the next. Memory stays at 3 x ``chunk_bytes``.

    ``num_threads`` > 1 serializes each chunk on up to that many threads; the bytes do not
    change. A threaded chunk holds ``chunk_bytes`` divided by the largest possible record size,
    with at least 256 records per thread (the default 4 MB allows up to 11 threads at
    max_seq_length 128, 3 at 512).
    """
    num_threads = resolve_num_threads(num_threads)
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, (int, np.integer)) \
            or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be an int >= 1, got {chunk_bytes!r}")
    sp = special_ids(tokenizer)
    order = np.ascontiguousarray(order, dtype=np.int64)
    fields = instances._as_dict()
    # at least one record of the largest size per buffer (also checks the two lengths)
    chunk_bytes = max(int(chunk_bytes),
                      _tfrecord.max_record_bytes(max_seq_length, max_predictions_per_seq))
    buffers = [np.empty(chunk_bytes, dtype=np.uint8) for _ in range(3)]
    k = turn = 0
    while k < len(order):
        buf = buffers[turn % 3]
        used, done = _tfrecord.serialize_into(docs.ids, fields, order[k:], max_seq_length,
                                              max_predictions_per_seq, sp["cls_id"],
                                              sp["sep_id"], buf, num_threads)
        if done == 0:  # cannot happen with a buffer of max_record_bytes; never loop on it
            raise RuntimeError(f"a record did not fit {len(buf)} bytes (max_record_bytes bound)")
        yield memoryview(buf)[:used]
        k += done
        turn += 1


def _file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = zlib.decompress(data, 31)
        except zlib.error as e:
            raise ValueError(f"{path}: corrupt GZIP stream: {e}") from None
    return data


def read_bert_records(path: str | os.PathLike) -> Dict[str, np.ndarray]:
    """All records of a BERT pre-training TFRecord file as 2-D arrays, one row per record.

    The seven features of run_pretraining.py's parse spec (int64, masked_lm_weights float32),
    decoded natively; CRCs verified; ValueError names the file and record on any problem.
    """
    from ._records import decode_bert_records

    path = os.fspath(path)
    return decode_bert_records(_file_bytes(path), path)


def read_records(path: str | os.PathLike) -> Iterator[bytes]:
    """The records of a TFRecord file (GZIP detected by its magic bytes), CRCs verified.

    Raises ValueError naming the file and the record number on a truncated or corrupt record.
    """
    from ._records import iter_records

    path = os.fspath(path)
    return iter_records(_file_bytes(path), path)


def read_examples(path: str | os.PathLike) -> Iterator[Dict[str, np.ndarray]]:
    """The records of a TFRecord file decoded by ``parse_example``; a record that is not a valid
    tf.train.Example raises ValueError naming the file and the record number."""
    from ._records import parse_example as _parse

    path = os.fspath(path)
    for k, record in enumerate(read_records(path)):
        try:
            yield _parse(record)
        except ValueError as e:
            raise ValueError(f"{path}: record {k}: {e}") from None


def parse_example(record: bytes) -> Dict[str, np.ndarray]:
    """Decode a serialized tf.train.Example with int64/float list features into numpy arrays.

    ValueError (naming the field) when the bytes are not a valid Example; ``read_examples`` adds
    the file and record number."""
    from ._records import parse_example as _parse

    return _parse(record)
