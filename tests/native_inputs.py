"""Crafted inputs for the native-boundary tests: a tiny vocab, TFRecord framing, protobuf bytes,
LTP's Avro cws record, and hand-built corpora and instances (nothing here trusts or needs the
shared data)."""

from __future__ import annotations

import struct

import numpy as np

from wwm_fast import _records

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "b", "c", "ab", "##b", "##c", "##bc", "中", "国", "人", "，", "。", "!"]
VOCAB = SPECIALS + WORDS  # [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4
CLS, SEP, MASK = 2, 3, 4


def write_vocab(folder) -> str:
    path = folder / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


def varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def masked_crc(data: bytes) -> int:
    crc = _records.crc32c(data) if data else 0
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes, length: int | None = None) -> bytes:
    """One TFRecord record; ``length`` overrides the header (its CRC stays valid)."""
    header = struct.pack("<Q", len(payload) if length is None else length)
    return header + struct.pack("<I", masked_crc(header)) + payload + struct.pack(
        "<I", masked_crc(payload))


def int64_feature(name: str, values) -> bytes:
    packed = b"".join(varint(v & (2**64 - 1)) for v in values)
    feature = field(3, field(1, packed))  # Feature.int64_list, Int64List.value packed
    return field(1, field(1, name.encode()) + field(2, feature))  # Features.feature map entry


def float_feature(name: str, values) -> bytes:
    packed = struct.pack(f"<{len(values)}f", *values)
    return field(1, field(1, name.encode()) + field(2, field(2, field(1, packed))))


def bert_example(seq: int = 8, pred: int = 2, v2=False) -> bytes:
    """Google's seven features; v2=True: Model Garden's v2 names (input_word_ids,
    input_type_ids); v2="both": input_ids given twice, under both names."""
    ids = int64_feature("input_word_ids" if v2 is True else "input_ids", range(1, seq + 1))
    if v2 == "both":
        ids += int64_feature("input_word_ids", range(1, seq + 1))
    feats = b"".join([
        ids, int64_feature("input_mask", [1] * seq),
        int64_feature("input_type_ids" if v2 is True else "segment_ids", [0] * seq),
        int64_feature("masked_lm_positions", [1] * pred),
        int64_feature("masked_lm_ids", [5] * pred),
        float_feature("masked_lm_weights", [1.0] * pred),
        int64_feature("next_sentence_labels", [0])])
    return field(1, feats)  # Example.features


def corpus(n_ids: int = 40, sentence: int = 5, per_doc: int = 2) -> dict:
    """ids 5.., every token a word start, sentences of `sentence` tokens, documents of
    `per_doc` sentences."""
    ids = (np.arange(n_ids, dtype=np.int32) % len(WORDS)) + len(SPECIALS)
    sent = np.arange(0, n_ids + 1, sentence, dtype=np.int64)
    if sent[-1] != n_ids:
        sent = np.append(sent, n_ids)
    n_sent = len(sent) - 1
    doc = np.arange(0, n_sent + 1, per_doc, dtype=np.int64)
    if doc[-1] != n_sent:
        doc = np.append(doc, n_sent)
    return {"ids": ids, "word_start": np.ones(n_ids, np.uint8), "sent_splits": sent,
            "doc_splits": doc}


def instances(a_start, a_len, b_start, b_len, *, preds=None) -> dict:
    """A hand-built instance dict; preds = (pred_splits, positions) with ids/labels = MASK/5."""
    n = len(a_start)
    d = {"a_start": np.asarray(a_start, np.int64), "a_len": np.asarray(a_len, np.int32),
         "b_start": np.asarray(b_start, np.int64), "b_len": np.asarray(b_len, np.int32),
         "next_label": np.zeros(n, np.uint8), "key": np.arange(n, dtype=np.uint64)}
    if preds is None:
        preds = (np.zeros(n + 1, np.int64), np.zeros(0, np.int32))
    splits, positions = preds
    positions = np.asarray(positions, np.int32)
    d.update(pred_splits=np.asarray(splits, np.int64), pred_positions=positions,
             pred_input_ids=np.full(len(positions), MASK, np.int32),
             pred_labels=np.full(len(positions), 5, np.int32))
    return d


RAND_IDS = np.arange(len(VOCAB), dtype=np.int32)


# -- LTP legacy model records (Avro binary encoding) ---------------------------------------------

def avro_long(n: int) -> bytes:
    u = (n << 1) if n >= 0 else ((-n) << 1) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def avro_string(b) -> bytes:
    b = b.encode("utf-8") if isinstance(b, str) else b
    return avro_long(len(b)) + b


def cws_datum(features, params, map_blocks=1) -> bytes:
    """LTP's cws record in Avro binary: definition {}, features map, parameters array."""
    out = bytearray()
    items = list(features)
    step = max(1, -(-len(items) // map_blocks))
    for a in range(0, len(items), step):
        block = items[a:a + step]
        out += avro_long(len(block))
        for k, v in block:
            out += avro_string(k) + avro_long(v)
    out += avro_long(0)
    if len(params):
        out += avro_long(len(params)) + struct.pack(f"<{len(params)}d", *params)
    out += avro_long(0)
    return bytes(out)
