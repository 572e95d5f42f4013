# cython: language_level=3
"""TFRecord framing and tf.train.Example decoding, without TensorFlow (used by wwm_fast.tfrecord).

The CRC32C here is an independent, table-driven implementation (the writer's is in
csrc/tfrecord.cc), so reading our own files back checks one against the other; TensorFlow's reader
is the third party in the tests.
"""

import numpy as np

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef uint32_t _CRC_TABLE[256]


cdef void _init_table() noexcept:
    cdef uint32_t i, c
    cdef int k
    for i in range(256):
        c = i
        for k in range(8):
            if c & 1:
                c = (c >> 1) ^ 0x82F63B78U
            else:
                c = c >> 1
        _CRC_TABLE[i] = c


_init_table()


cdef inline uint32_t _crc32c(const uint8_t* p, size_t n) noexcept nogil:
    cdef uint32_t crc = 0xFFFFFFFFU
    cdef size_t i
    for i in range(n):
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ p[i]) & 0xFF]
    return crc ^ 0xFFFFFFFFU


cdef inline uint32_t _masked(uint32_t crc) noexcept nogil:
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8U


def crc32c(const uint8_t[::1] data):
    """CRC32C of a bytes-like object (test hook for the writer's implementation)."""
    if data.shape[0] == 0:
        return 0
    return _crc32c(&data[0], data.shape[0])


def index_records(const uint8_t[::1] data, str path):
    """(offset, length) of every record's payload; ValueError names the file and record."""
    cdef Py_ssize_t n = data.shape[0], pos = 0
    cdef uint64_t length
    cdef uint32_t stored
    cdef list out = []
    cdef Py_ssize_t k = 0
    while pos < n:
        if n - pos < 12:
            raise ValueError(f"{path}: record {k} is truncated ({n - pos} header bytes left)")
        memcpy(&length, &data[pos], 8)
        memcpy(&stored, &data[pos + 8], 4)
        if stored != _masked(_crc32c(&data[pos], 8)):
            raise ValueError(f"{path}: record {k} at byte {pos}: length CRC mismatch "
                             f"(not a TFRecord file, or corrupt)")
        if <uint64_t>(n - pos - 12) < length + 4:
            raise ValueError(f"{path}: record {k} at byte {pos} is truncated: needs "
                             f"{length + 16} bytes, {n - pos} left")
        memcpy(&stored, &data[pos + 12 + length], 4)
        if length and stored != _masked(_crc32c(&data[pos + 12], length)):
            raise ValueError(f"{path}: record {k} at byte {pos}: data CRC mismatch (corrupt)")
        out.append((pos + 12, <Py_ssize_t>length))
        pos += 16 + length
        k += 1
    return out


def iter_records(data, str path):
    """Yield the payload of every record of a TFRecord byte string."""
    view = memoryview(data)
    for offset, length in index_records(data, path):
        yield bytes(view[offset:offset + length])


cdef inline uint64_t _varint(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos) except? 0:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if pos[0] >= n or shift > 63:
            raise ValueError("malformed varint in tf.train.Example")
        b = p[pos[0]]
        pos[0] += 1
        result |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            return result
        shift += 7


cdef Py_ssize_t _skip(const uint8_t* p, Py_ssize_t n, Py_ssize_t pos, int wire) except -1:
    if wire == 0:
        _varint(p, n, &pos)
    elif wire == 1:
        pos += 8
    elif wire == 2:
        pos += <Py_ssize_t>_varint(p, n, &pos)
    elif wire == 5:
        pos += 4
    else:
        raise ValueError(f"unsupported protobuf wire type {wire}")
    if pos > n:
        raise ValueError("truncated field in tf.train.Example")
    return pos


cdef object _parse_list(const uint8_t* p, Py_ssize_t n, int kind):
    """kind 3: Int64List, 2: FloatList, 1: BytesList (field 1, packed or not)."""
    cdef Py_ssize_t pos = 0, end
    cdef uint64_t tag
    cdef list ints = []
    cdef list floats = []
    cdef list blobs = []
    cdef float f
    cdef int wire
    while pos < n:
        tag = _varint(p, n, &pos)
        wire = tag & 7
        if (tag >> 3) != 1:
            pos = _skip(p, n, pos, wire)
            continue
        if kind == 3:
            if wire == 2:
                end = pos + <Py_ssize_t>_varint(p, n, &pos)
                if end > n:
                    raise ValueError("truncated Int64List")
                while pos < end:
                    ints.append(<int64_t>_varint(p, end, &pos))
            else:
                ints.append(<int64_t>_varint(p, n, &pos))
        elif kind == 2:
            if wire == 2:
                end = pos + <Py_ssize_t>_varint(p, n, &pos)
                if end > n or (end - pos) % 4:
                    raise ValueError("malformed FloatList")
                while pos < end:
                    memcpy(&f, p + pos, 4)
                    floats.append(f)
                    pos += 4
            else:
                if pos + 4 > n:
                    raise ValueError("truncated FloatList")
                memcpy(&f, p + pos, 4)
                floats.append(f)
                pos += 4
        else:
            end = pos + <Py_ssize_t>_varint(p, n, &pos)
            if end > n:
                raise ValueError("truncated BytesList")
            blobs.append((<const char*>p)[pos:end])
            pos = end
    if kind == 3:
        return np.array(ints, dtype=np.int64)
    if kind == 2:
        return np.array(floats, dtype=np.float32)
    return blobs


def parse_example(const uint8_t[::1] record):
    """Features of a serialized tf.train.Example: name -> int64/float32 array or list of bytes."""
    cdef Py_ssize_t n = record.shape[0]
    if n == 0:
        return {}
    cdef const uint8_t* p = &record[0]
    cdef Py_ssize_t pos = 0, fend, epos, eend, vend, vpos, lend
    cdef uint64_t tag, ftag, etag
    cdef dict out = {}
    cdef object key, value
    while pos < n:
        tag = _varint(p, n, &pos)
        if (tag >> 3) != 1 or (tag & 7) != 2:
            pos = _skip(p, n, pos, tag & 7)
            continue
        fend = pos + <Py_ssize_t>_varint(p, n, &pos)  # Features
        if fend > n:
            raise ValueError("truncated Features")
        while pos < fend:
            ftag = _varint(p, fend, &pos)
            if (ftag >> 3) != 1 or (ftag & 7) != 2:
                pos = _skip(p, fend, pos, ftag & 7)
                continue
            eend = pos + <Py_ssize_t>_varint(p, fend, &pos)  # map entry
            if eend > fend:
                raise ValueError("truncated feature map entry")
            key = None
            value = None
            while pos < eend:
                etag = _varint(p, eend, &pos)
                if (etag & 7) != 2:
                    pos = _skip(p, eend, pos, etag & 7)
                    continue
                vend = pos + <Py_ssize_t>_varint(p, eend, &pos)
                if vend > eend:
                    raise ValueError("truncated feature")
                if (etag >> 3) == 1:
                    key = (<const char*>p)[pos:vend].decode("utf-8")
                elif (etag >> 3) == 2:
                    vpos = pos
                    while vpos < vend:  # Feature: oneof bytes_list=1, float_list=2, int64_list=3
                        ftag = _varint(p, vend, &vpos)
                        lend = vpos + <Py_ssize_t>_varint(p, vend, &vpos)
                        if lend > vend:
                            raise ValueError("truncated feature list")
                        value = _parse_list(p + vpos, lend - vpos, <int>(ftag >> 3))
                        vpos = lend
                pos = vend
            if key is not None:
                out[key] = value if value is not None else np.zeros(0, np.int64)
        pos = fend
    return out


cdef Py_ssize_t _feature_value(const uint8_t* p, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t end,
                               Py_ssize_t* list_start, Py_ssize_t* list_end,
                               int* kind) except -2:
    """Inside a map entry value (a Feature), find its list: kind 1/2/3, payload [start, end)."""
    cdef uint64_t tag
    cdef Py_ssize_t lend
    while pos < end:
        tag = _varint(p, end, &pos)
        if (tag & 7) != 2:
            pos = _skip(p, end, pos, tag & 7)
            continue
        lend = pos + <Py_ssize_t>_varint(p, end, &pos)
        if lend > end:
            raise ValueError("truncated feature list")
        kind[0] = <int>(tag >> 3)
        list_start[0] = pos
        list_end[0] = lend
        pos = lend
    return pos


cdef Py_ssize_t _fill_int64(const uint8_t* p, Py_ssize_t start, Py_ssize_t end,
                            int64_t* out, Py_ssize_t width) except -1:
    """Values of an Int64List payload into out[0:width]; returns how many there were."""
    cdef Py_ssize_t pos = start, count = 0, lend
    cdef uint64_t tag
    while pos < end:
        tag = _varint(p, end, &pos)
        if (tag >> 3) != 1:
            pos = _skip(p, end, pos, tag & 7)
            continue
        if (tag & 7) == 2:
            lend = pos + <Py_ssize_t>_varint(p, end, &pos)
            if lend > end:
                raise ValueError("truncated Int64List")
            while pos < lend:
                if count < width:
                    out[count] = <int64_t>_varint(p, lend, &pos)
                else:
                    _varint(p, lend, &pos)
                count += 1
        else:
            if count < width:
                out[count] = <int64_t>_varint(p, end, &pos)
            else:
                _varint(p, end, &pos)
            count += 1
    return count


cdef Py_ssize_t _fill_float(const uint8_t* p, Py_ssize_t start, Py_ssize_t end,
                            float* out, Py_ssize_t width) except -1:
    cdef Py_ssize_t pos = start, count = 0, lend
    cdef uint64_t tag
    while pos < end:
        tag = _varint(p, end, &pos)
        if (tag >> 3) != 1:
            pos = _skip(p, end, pos, tag & 7)
            continue
        if (tag & 7) == 2:
            lend = pos + <Py_ssize_t>_varint(p, end, &pos)
            if lend > end or (lend - pos) % 4:
                raise ValueError("malformed FloatList")
            while pos < lend:
                if count < width:
                    memcpy(&out[count], p + pos, 4)
                count += 1
                pos += 4
        else:
            if pos + 4 > end:
                raise ValueError("truncated FloatList")
            if count < width:
                memcpy(&out[count], p + pos, 4)
            count += 1
            pos += 4
    return count


# Model Garden's --use_v2_feature_names -> the names of run_pretraining.py's spec
_V2_NAMES = {"input_word_ids": "input_ids", "input_type_ids": "segment_ids"}


def decode_bert_records(data, str path):
    """Every record of a TFRecord byte string as fixed-width 2-D arrays of the seven BERT
    pre-training features (run_pretraining.py's spec), widths taken from the first record.
    Model Garden's v2 names (input_word_ids, input_type_ids) are read as input_ids, segment_ids.

    Raises ValueError naming the file and record when a feature is missing or has another length.
    """
    cdef list index = index_records(data, path)
    cdef Py_ssize_t n_rec = len(index)
    names = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
             "masked_lm_weights", "next_sentence_labels")
    if n_rec == 0:
        return {k: np.zeros((0, 0), np.float32 if k == "masked_lm_weights" else np.int64)
                for k in names}
    first_off, first_len = index[0]
    first = {_V2_NAMES.get(k, k): v
             for k, v in parse_example(memoryview(data)[first_off:first_off + first_len]).items()}
    widths = []
    for k in names:
        if k not in first:
            raise ValueError(f"{path} record 0: not a BERT pre-training example (no feature "
                             f"{k!r}); features: {sorted(first)}")
        widths.append(len(first[k]))
    cdef dict out = {k: np.zeros((n_rec, w), np.float32 if k == "masked_lm_weights" else np.int64)
                     for k, w in zip(names, widths)}
    cdef int64_t* ibase[7]
    cdef float* fbase = NULL
    cdef int64_t[:, ::1] iarr
    cdef float[:, ::1] farr
    for j, k in enumerate(names):
        ibase[j] = NULL
        if widths[j] == 0:
            continue
        if j == 5:
            farr = out[k]
            fbase = &farr[0, 0]
        else:
            iarr = out[k]
            ibase[j] = &iarr[0, 0]
    cdef const uint8_t[::1] view = data
    cdef const uint8_t* p = &view[0]
    cdef Py_ssize_t r, pos, end, fend, eend, vend, kstart, kend, ls, le, got, want
    cdef uint64_t tag
    cdef int kind, which
    cdef bytes key
    for r in range(n_rec):
        pos = index[r][0]
        end = pos + index[r][1]
        seen = 0
        while pos < end:
            tag = _varint(p, end, &pos)
            if (tag >> 3) != 1 or (tag & 7) != 2:
                pos = _skip(p, end, pos, tag & 7)
                continue
            fend = pos + <Py_ssize_t>_varint(p, end, &pos)
            if fend > end:
                raise ValueError(f"{path} record {r}: truncated Features")
            while pos < fend:
                tag = _varint(p, fend, &pos)
                if (tag >> 3) != 1 or (tag & 7) != 2:
                    pos = _skip(p, fend, pos, tag & 7)
                    continue
                eend = pos + <Py_ssize_t>_varint(p, fend, &pos)
                kstart = kend = -1
                ls = le = -1
                kind = 0
                while pos < eend:
                    tag = _varint(p, eend, &pos)
                    if (tag & 7) != 2:
                        pos = _skip(p, eend, pos, tag & 7)
                        continue
                    vend = pos + <Py_ssize_t>_varint(p, eend, &pos)
                    if (tag >> 3) == 1:
                        kstart, kend = pos, vend
                    elif (tag >> 3) == 2:
                        _feature_value(p, eend, pos, vend, &ls, &le, &kind)
                    pos = vend
                if kstart < 0 or ls < 0:
                    continue
                key = (<const char*>p)[kstart:kend]
                name = key.decode("utf-8")
                try:
                    which = names.index(_V2_NAMES.get(name, name))
                except ValueError:
                    continue
                want = widths[which]
                if which == 5:
                    got = _fill_float(p, ls, le, fbase + r * want if want else NULL, want)
                else:
                    got = _fill_int64(p, ls, le, ibase[which] + r * want if want else NULL, want)
                if got != want:
                    raise ValueError(f"{path} record {r}: feature {names[which]!r} has {got} "
                                     f"values, record 0 has {want}")
                seen |= 1 << which
        if seen != 0x7F:
            missing = [k for j, k in enumerate(names) if not (seen >> j) & 1]
            raise ValueError(f"{path} record {r}: missing features {missing}")
    return out
