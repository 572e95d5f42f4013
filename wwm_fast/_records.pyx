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
    cdef uint64_t length, room
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
        room = <uint64_t>(n - pos - 12)  # bytes after the header; data + CRC must fit
        if length > room or room - length < 4:  # (never length + 4: it wraps near 2^64)
            raise ValueError(f"{path}: record {k} at byte {pos} is truncated: needs "
                             f"{<object>length + 16} bytes, {n - pos} left")
        memcpy(&stored, &data[pos + 12 + <Py_ssize_t>length], 4)
        if length and stored != _masked(_crc32c(&data[pos + 12], length)):
            raise ValueError(f"{path}: record {k} at byte {pos}: data CRC mismatch (corrupt)")
        out.append((pos + 12, <Py_ssize_t>length))
        pos += 16 + <Py_ssize_t>length
        k += 1
    return out


def iter_records(data, str path):
    """Yield the payload of every record of a TFRecord byte string."""
    view = memoryview(data)
    for offset, length in index_records(data, path):
        yield bytes(view[offset:offset + length])


# Protobuf decoding. Nothing read from the data is trusted: every length is checked against the
# bytes that are left before it is added to a position (_field_end), so no position ever moves
# backwards or past its enclosing field, and a varint longer than 10 bytes is an error.

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


cdef inline Py_ssize_t _field_end(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos,
                                  str what) except -1:
    """Reads a length varint at pos[0]; returns the end of the field it announces, checked to lie
    inside [pos[0], n] (a length of 2^63 or more can never become a negative size)."""
    cdef uint64_t length = _varint(p, n, pos)
    if length > <uint64_t>(n - pos[0]):
        raise ValueError(f"truncated {what} in tf.train.Example: {length} bytes announced at byte "
                         f"{pos[0]}, {n - pos[0]} left")
    return pos[0] + <Py_ssize_t>length


cdef Py_ssize_t _skip(const uint8_t* p, Py_ssize_t n, Py_ssize_t pos, int wire) except -1:
    if wire == 0:
        _varint(p, n, &pos)
    elif wire == 1:
        if n - pos < 8:
            raise ValueError("truncated field in tf.train.Example")
        pos += 8
    elif wire == 2:
        pos = _field_end(p, n, &pos, "field")
    elif wire == 5:
        if n - pos < 4:
            raise ValueError("truncated field in tf.train.Example")
        pos += 4
    else:
        raise ValueError(f"unsupported protobuf wire type {wire}")
    return pos


cdef Py_ssize_t _next_entry(const uint8_t* p, Py_ssize_t end, Py_ssize_t* pos,
                            Py_ssize_t* fend) except -2:
    """The walk both readers share: Example {features = 1: Features {feature = 1: map entry}}.
    Moves pos[0] to the end of the record's next map entry and returns where it starts, or -1
    when the record [.., end) has none left; fend[0] is the end of the Features field being
    walked (start both at the record's start). Other fields are skipped, every length checked."""
    cdef uint64_t tag
    cdef Py_ssize_t start
    while True:
        while pos[0] < fend[0]:
            tag = _varint(p, fend[0], pos)
            if (tag >> 3) != 1 or (tag & 7) != 2:
                pos[0] = _skip(p, fend[0], pos[0], tag & 7)
                continue
            start = _field_end(p, fend[0], pos, "feature map entry")  # the entry's end
            start, pos[0] = pos[0], start
            return start
        if pos[0] >= end:
            return -1
        tag = _varint(p, end, pos)
        if (tag >> 3) != 1 or (tag & 7) != 2:
            pos[0] = _skip(p, end, pos[0], tag & 7)
            continue
        fend[0] = _field_end(p, end, pos, "Features")


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
        if kind == 3 and wire == 2:
            end = _field_end(p, n, &pos, "Int64List")
            while pos < end:
                ints.append(<int64_t>_varint(p, end, &pos))
        elif kind == 3 and wire == 0:
            ints.append(<int64_t>_varint(p, n, &pos))
        elif kind == 2 and wire == 2:
            end = _field_end(p, n, &pos, "FloatList")
            if (end - pos) % 4:
                raise ValueError("malformed FloatList in tf.train.Example: packed size "
                                 f"{end - pos} is not a multiple of 4")
            while pos < end:
                memcpy(&f, p + pos, 4)
                floats.append(f)
                pos += 4
        elif kind == 2 and wire == 5:
            if n - pos < 4:
                raise ValueError("truncated FloatList in tf.train.Example")
            memcpy(&f, p + pos, 4)
            floats.append(f)
            pos += 4
        elif kind == 1 and wire == 2:
            end = _field_end(p, n, &pos, "BytesList")
            blobs.append((<const char*>p)[pos:end])
            pos = end
        else:
            pos = _skip(p, n, pos, wire)
    if kind == 3:
        return np.array(ints, dtype=np.int64)
    if kind == 2:
        return np.array(floats, dtype=np.float32)
    return blobs


def parse_example(const uint8_t[::1] record):
    """Features of a serialized tf.train.Example: name -> int64/float32 array or list of bytes.

    ValueError (naming the field) when the bytes are not a valid Example."""
    cdef Py_ssize_t n = record.shape[0]
    if n == 0:
        return {}
    cdef const uint8_t* p = &record[0]
    cdef Py_ssize_t pos, fend = 0, eend = 0, vend, vpos, lend
    cdef uint64_t ftag, etag
    cdef dict out = {}
    cdef object key, value
    while True:  # each map entry [pos, eend); eend: where the walk goes on
        pos = _next_entry(p, n, &eend, &fend)
        if pos < 0:
            break
        key = None
        value = None
        while pos < eend:
            etag = _varint(p, eend, &pos)
            if (etag & 7) != 2:
                pos = _skip(p, eend, pos, etag & 7)
                continue
            vend = _field_end(p, eend, &pos, "feature")
            if (etag >> 3) == 1:
                try:
                    key = (<const char*>p)[pos:vend].decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"feature name {(<const char*>p)[pos:vend]!r} is not "
                                     f"UTF-8") from None
            elif (etag >> 3) == 2:
                vpos = pos
                while vpos < vend:  # Feature: oneof bytes_list=1, float_list=2, int64_list=3
                    ftag = _varint(p, vend, &vpos)
                    if (ftag & 7) != 2 or not 1 <= (ftag >> 3) <= 3:
                        vpos = _skip(p, vend, vpos, ftag & 7)
                        continue
                    lend = _field_end(p, vend, &vpos, "feature list")
                    value = _parse_list(p + vpos, lend - vpos, <int>(ftag >> 3))
                    vpos = lend
            pos = vend
        if key is not None:
            out[key] = value if value is not None else np.zeros(0, np.int64)
    return out


cdef Py_ssize_t _feature_value(const uint8_t* p, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t end,
                               Py_ssize_t* list_start, Py_ssize_t* list_end,
                               int* kind) except -2:
    """Inside a map entry value (a Feature), find its list: kind 1/2/3, payload [start, end)."""
    cdef uint64_t tag
    cdef Py_ssize_t lend
    while pos < end:
        tag = _varint(p, end, &pos)
        if (tag & 7) != 2 or not 1 <= (tag >> 3) <= 3:
            pos = _skip(p, end, pos, tag & 7)
            continue
        lend = _field_end(p, end, &pos, "feature list")
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
        if (tag >> 3) != 1 or (tag & 7) not in (0, 2):
            pos = _skip(p, end, pos, tag & 7)
            continue
        if (tag & 7) == 2:
            lend = _field_end(p, end, &pos, "Int64List")
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
        if (tag >> 3) != 1 or (tag & 7) not in (2, 5):
            pos = _skip(p, end, pos, tag & 7)
            continue
        if (tag & 7) == 2:
            lend = _field_end(p, end, &pos, "FloatList")
            if (lend - pos) % 4:
                raise ValueError("malformed FloatList in tf.train.Example: packed size "
                                 f"{lend - pos} is not a multiple of 4")
            while pos < lend:
                if count < width:
                    memcpy(&out[count], p + pos, 4)
                count += 1
                pos += 4
        else:
            if end - pos < 4:
                raise ValueError("truncated FloatList in tf.train.Example")
            if count < width:
                memcpy(&out[count], p + pos, 4)
            count += 1
            pos += 4
    return count


_NAMES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
          "masked_lm_weights", "next_sentence_labels")
# Model Garden's --use_v2_feature_names -> the names of run_pretraining.py's spec
_V2_NAMES = {"input_word_ids": "input_ids", "input_type_ids": "segment_ids"}
# Feature name (bytes, as in the record: a hostile name is never decoded) -> its index in
# _NAMES, + _V2 for a v2 name.
cdef enum:
    _V2 = 8
_SLOTS = {k.encode(): j for j, k in enumerate(_NAMES)}
_SLOTS.update({k.encode(): _NAMES.index(v) + _V2 for k, v in _V2_NAMES.items()})


cdef str _both_names(int which):
    v2 = next(k for k, v in _V2_NAMES.items() if v == _NAMES[which])
    return (f"feature {_NAMES[which]!r} appears twice, as {_NAMES[which]!r} and as Model "
            f"Garden's v2 name {v2!r}")


cdef dict _v1_names(dict features):
    """features with Model Garden's v2 names read as the v1 names."""
    for v2, v1 in _V2_NAMES.items():
        if v2 in features and v1 in features:
            raise ValueError(_both_names(_NAMES.index(v1)))
    return {_V2_NAMES.get(k, k): v for k, v in features.items()}


def decode_bert_records(data, str path):
    """Every record of a TFRecord byte string as fixed-width 2-D arrays of the seven BERT
    pre-training features (run_pretraining.py's spec), widths taken from the first record.
    Model Garden's v2 names (input_word_ids, input_type_ids) are read as input_ids, segment_ids
    (a record may use either name of a feature, not both).

    Raises ValueError naming the file and record when a record is corrupt, is not a valid
    tf.train.Example, or a feature is missing, of another type or of another length.
    """
    cdef list index = index_records(data, path)
    cdef Py_ssize_t n_rec = len(index)
    names = _NAMES
    if n_rec == 0:
        return {k: np.zeros((0, 0), np.float32 if k == "masked_lm_weights" else np.int64)
                for k in names}
    first_off, first_len = index[0]
    try:
        first = _v1_names(parse_example(memoryview(data)[first_off:first_off + first_len]))
    except ValueError as e:
        raise ValueError(f"{path} record 0: {e}") from None
    widths = []
    for j, k in enumerate(names):
        if k not in first:
            raise ValueError(f"{path} record 0: not a BERT pre-training example (no feature "
                             f"{k!r}); features: {sorted(first)}")
        if not isinstance(first[k], np.ndarray) or first[k].dtype != (
                np.float32 if j == 5 else np.int64):
            raise ValueError(f"{path} record 0: feature {k!r} must be a "
                             f"{'float' if j == 5 else 'int64'} list")
        widths.append(len(first[k]))
    # Each value takes at least one byte (a float four): a record too short for record 0's widths
    # is corrupt, and checking it first bounds the arrays below by 8x the input's size.
    cdef Py_ssize_t r, min_bytes = sum(widths) + 3 * widths[5]
    for r in range(n_rec):
        if index[r][1] < min_bytes:
            raise ValueError(f"{path} record {r}: {index[r][1]} bytes cannot hold the "
                             f"{sum(widths)} feature values of record 0")
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
    for r in range(n_rec):
        try:
            _decode_one(p, index[r][0], index[r][0] + index[r][1], r, widths, ibase, fbase)
        except ValueError as e:
            raise ValueError(f"{path} record {r}: {e}") from None
    return out


cdef int _decode_one(const uint8_t* p, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t r,
                     list widths, int64_t** ibase, float* fbase) except -1:
    """One record [pos, end) into row r of the arrays."""
    cdef Py_ssize_t fend, eend, vend, kstart, kend, ls, le, got, want
    cdef uint64_t tag
    cdef int kind, which, seen = 0, seen_v2 = 0
    cdef bytes key
    cdef object slot
    names = _NAMES
    fend = eend = pos
    while True:  # each map entry [pos, eend); eend: where the walk goes on
        pos = _next_entry(p, end, &eend, &fend)
        if pos < 0:
            break
        kstart = kend = -1
        ls = le = -1
        kind = 0
        while pos < eend:
            tag = _varint(p, eend, &pos)
            if (tag & 7) != 2:
                pos = _skip(p, eend, pos, tag & 7)
                continue
            vend = _field_end(p, eend, &pos, "feature")
            if (tag >> 3) == 1:
                kstart, kend = pos, vend
            elif (tag >> 3) == 2:
                _feature_value(p, eend, pos, vend, &ls, &le, &kind)
            pos = vend
        if kstart < 0 or ls < 0:
            continue
        key = (<const char*>p)[kstart:kend]
        slot = _SLOTS.get(key)
        if slot is None:  # another feature (or a name that is not UTF-8): not ours
            continue
        which = slot
        if which >= _V2:
            which -= _V2
            seen_v2 |= 1 << which
        else:
            seen |= 1 << which
        if (seen & seen_v2) >> which & 1:
            raise ValueError(_both_names(which))
        if kind != (2 if which == 5 else 3):
            raise ValueError(f"feature {key.decode()!r} is a "
                             f"{('bytes', 'float', 'int64')[kind - 1]} list, expected "
                             f"{'float' if which == 5 else 'int64'}")
        want = widths[which]
        if which == 5:
            got = _fill_float(p, ls, le, fbase + r * want if want else NULL, want)
        else:
            got = _fill_int64(p, ls, le, ibase[which] + r * want if want else NULL, want)
        if got != want:
            raise ValueError(f"feature {key.decode()!r} has {got} values, record 0 has "
                             f"{want}")
    seen |= seen_v2
    if seen != 0x7F:
        missing = [k for j, k in enumerate(names) if not (seen >> j) & 1]
        raise ValueError(f"missing features {missing}")
    return 0
