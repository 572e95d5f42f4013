"""Reading TensorFlow checkpoint bundles without TensorFlow.

This module owns reading TF2/TF1 "V2" checkpoints (`tf.train.load_checkpoint`'s job) with the
standard library and numpy alone; it never imports TensorFlow (whose import takes seconds and
half a gigabyte). `wwm-train export --format=hf` reads checkpoints with it.

A bundle at `<prefix>` is

* `<prefix>.index`: a LevelDB-style sorted table. From the end: a 48-byte footer (the handles,
  varint64 offset + size, of the metaindex and index blocks, zero padding to 40 bytes, the magic
  number 0xdb4775248b80fb57 as a little-endian uint64); the index block maps a separator key to
  the handle of each data block; every block is followed by a 5-byte trailer (compression type,
  then the masked CRC32C of the block and that type byte). A block is a run of entries (varint32
  shared key prefix length, varint32 unshared length, varint32 value length, the unshared key
  bytes, the value) followed by the uint32 restart offsets and their count. The empty key holds a
  BundleHeaderProto (num_shards, endianness, version); every other key, a tensor name, holds a
  BundleEntryProto (dtype, shape, shard_id, offset, size, masked crc32c of the data, slices).
* `<prefix>.data-NNNNN-of-MMMMM`: the shards, tensors' bytes at the entries' offsets (numeric
  tensors as little-endian row-major arrays; strings as varint64 lengths, the masked CRC32C of the
  lengths, then the bytes).

The protobufs are read with a small varint decoder (no generated code). The files are untrusted:
every offset, size, length and varint is checked against the file it points into, keys must be
strictly increasing, blocks may not overlap; any inconsistency raises `BundleFormatError` (a
ValueError) naming the file, and the tensor where there is one. Checksums are verified: the
index blocks' when the index is opened, a tensor's when it is read. Tensors are read one at a time
with plain file reads (`get_tensor`), so reading a checkpoint holds one tensor, never a whole data
file. Not supported, each with a clear error: snappy-compressed index blocks (TensorFlow writes
its bundles uncompressed), big-endian bundles, and the resource, variant and quantized dtypes.
Tensors stored in slices (TF1 partitioned variables, tf.train.Checkpoint's MaxShardSizePolicy)
are put together from their slices, which are checked to tile the tensor exactly.
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np

__all__ = ["BundleFormatError", "BundleReader", "data_filename", "crc32c"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_TRAILER_BYTES = 5  # compression type + masked CRC32C
_MAX_INDEX_BYTES = 1 << 30  # an index this large is not a checkpoint's (BERT-large's is ~100 KB)
_MAX_RANK = 32  # numpy's limit (TensorFlow's is 254)

# tensorflow/core/framework/types.proto DataType -> little-endian numpy dtype (None: bfloat16)
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8", 10: "?",
           14: None, 17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8"}
_DT_STRING = 7
_DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
                7: "string", 8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8",
                13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16",
                18: "complex128", 19: "float16", 20: "resource", 21: "variant", 22: "uint32",
                23: "uint64"}


class BundleFormatError(ValueError):
    """A checkpoint bundle that cannot be read (names the file, and the tensor where there is one)."""


def data_filename(prefix: str, shard: int, num_shards: int) -> str:
    """`<prefix>.data-00000-of-00001`: TensorFlow's name of a bundle's data shard."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


# ============================================================================ CRC32C
def _crc32c_impl():
    try:  # SSE4.2 when the CPU has it; reads any C-contiguous buffer in place
        from wwm_fast._tfrecord import crc32c as native
    except ImportError:  # an unbuilt checkout: a pure-Python table (slow, but correct)
        native = None
    if native is not None:
        return lambda data: native(memoryview(data).cast("B"))
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)

    def slow(data):
        crc = 0xFFFFFFFF
        for b in bytes(data):
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    return slow


_crc32c = None


def crc32c(data) -> int:
    """CRC32C (Castagnoli) of a bytes-like object."""
    global _crc32c
    if _crc32c is None:
        _crc32c = _crc32c_impl()
    return _crc32c(data)


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ============================================================================ varints, protobuf
def _varint(buf, pos: int, end: int, what, max_bytes: int = 10) -> tuple[int, int]:
    """(value, next position) of the varint at buf[pos:end]; `what()` describes it for errors."""
    result = shift = 0
    for i in range(max_bytes):
        if pos >= end:
            raise BundleFormatError(f"{what()}: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if max_bytes == 10 and result >= 1 << 64:
                raise BundleFormatError(f"{what()}: varint exceeds 64 bits")
            if max_bytes == 5 and result >= 1 << 32:
                raise BundleFormatError(f"{what()}: varint32 exceeds 32 bits")
            return result, pos
        shift += 7
    raise BundleFormatError(f"{what()}: varint longer than {max_bytes} bytes")


def _fields(buf: bytes, what) -> list[tuple[int, int, object]]:
    """The (field number, wire type, value) of a protobuf message: an int for varint and fixed
    fields, bytes for length-delimited ones. Groups (wire types 3, 4) are refused."""
    out, pos, end = [], 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end, what)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise BundleFormatError(f"{what()}: protobuf field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end, what)
        elif wire == 1 or wire == 5:
            n = 8 if wire == 1 else 4
            if pos + n > end:
                raise BundleFormatError(f"{what()}: truncated fixed{8 * n} field {number}")
            value = int.from_bytes(buf[pos:pos + n], "little")
            pos += n
        elif wire == 2:
            n, pos = _varint(buf, pos, end, what)
            if n > end - pos:
                raise BundleFormatError(f"{what()}: field {number} of {n} bytes runs past the "
                                        f"end of its {end}-byte message")
            value = bytes(buf[pos:pos + n])
            pos += n
        else:
            raise BundleFormatError(f"{what()}: unsupported protobuf wire type {wire} "
                                    f"(field {number})")
        out.append((number, wire, value))
    return out


def _message(fields, number: int, what) -> bytes:
    """A singular embedded message: protobuf merges repeated occurrences, which is parsing
    their concatenation."""
    parts = []
    for n, w, v in fields:
        if n == number:
            if w != 2:
                raise BundleFormatError(f"{what()}: field {number} has wire type {w}, expected 2")
            parts.append(v)
    return b"".join(parts)


def _int64(value: int) -> int:
    """A varint read as a two's-complement int64/int32 (protobuf's encoding of negatives)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(fields, number: int, wire: int, what, default=0):
    """The last value of a singular field (protobuf: the last one wins)."""
    value = default
    for n, w, v in fields:
        if n == number:
            if w != wire:
                raise BundleFormatError(f"{what()}: field {number} has wire type {w}, "
                                        f"expected {wire}")
            value = v
    return value


# ============================================================================ slice names
# A slice of a sliced tensor is stored under TensorFlow's "ordered code" of (0, name, rank,
# start and length of each dimension): an unsigned number as a length byte + big-endian bytes; a
# string with 0x00 -> 00 ff and 0xff -> ff 00 escaped, ended by 00 01; a signed number in 1-10
# bytes whose leading bits give the sign and the length (see tensorflow/core/lib/strings/
# ordered_code.cc). Only the encoder is needed: the reader looks the slices up by name.
_SIGNED_HEADER = [(0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0),
                  (0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0)]


def _ordered_unsigned(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _ordered_signed(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    n = 1
    while magnitude >= 1 << (7 * n - 1):
        n += 1
    out = bytearray((value % (1 << 80)).to_bytes(10, "big")[10 - n:])
    out[0] ^= _SIGNED_HEADER[n][0]
    if n > 1:
        out[1] ^= _SIGNED_HEADER[n][1]
    return bytes(out)


def _slice_key(name: str, extents) -> bytes:
    escaped = b"".join(b"\x00\xff" if c == 0 else b"\xff\x00" if c == 0xFF else bytes([c])
                       for c in name.encode("utf-8"))
    out = [_ordered_unsigned(0), escaped, b"\x00\x01", _ordered_unsigned(len(extents))]
    for start, length in extents:
        out += [_ordered_signed(start), _ordered_signed(length)]
    return b"".join(out)


# ============================================================================ the table
class _Entry:
    __slots__ = ("dtype", "shape", "shard", "offset", "size", "crc", "sliced")

    def __init__(self, dtype, shape, shard, offset, size, crc, sliced):
        self.dtype, self.shape, self.shard = dtype, shape, shard
        self.offset, self.size, self.crc, self.sliced = offset, size, crc, sliced


def _block_handle(buf, pos, end, what) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos, end, what)
    size, pos = _varint(buf, pos, end, what)
    return offset, size, pos


class BundleReader:
    """The tensors of a checkpoint bundle, read without TensorFlow.

    `BundleReader(prefix)` opens `<prefix>.index` (checked whole: footer, blocks, checksums,
    every entry); the data files are opened by `get_tensor`. The methods mirror
    `tf.train.load_checkpoint`'s reader: `get_variable_to_shape_map()`,
    `get_variable_to_dtype_map()` (numpy dtypes; bfloat16 as `ml_dtypes.bfloat16`, strings as
    `object`), `has_tensor(name)` and `get_tensor(name)` (a numpy array; bytes objects for a
    string tensor).
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._entries: dict[str, _Entry] = {}
        self._slices: dict[bytes, _Entry] = {}  # encoded slice name -> its entry
        self._data_sizes: dict[int, int] = {}
        self.num_shards: int | None = None
        path = self.index_path
        try:
            size = os.path.getsize(path)
            if size > _MAX_INDEX_BYTES:
                raise BundleFormatError(f"checkpoint index {path} has {size} bytes, more than a "
                                        f"checkpoint index can ({_MAX_INDEX_BYTES})")
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BundleFormatError(f"checkpoint {prefix} not found ({path} does not exist)") from None
        except IsADirectoryError:
            raise BundleFormatError(f"checkpoint index {path} is a directory") from None
        except OSError as e:
            raise BundleFormatError(f"cannot read checkpoint index {path}: {e.strerror or e}") from None
        self._parse_index(data)

    # ------------------------------------------------------------------ index
    def _fail(self, message: str, key: str | None = None):
        where = f" (entry {key!r})" if key is not None else ""
        raise BundleFormatError(f"checkpoint index {self.index_path}{where}: {message}")

    def _block(self, data: bytes, offset: int, size: int, what: str) -> memoryview:
        """The contents of the block at `offset` (its trailer checked)."""
        if offset + size + _TRAILER_BYTES > len(data) - _FOOTER_BYTES:
            self._fail(f"{what} block at byte {offset} ({size} bytes + trailer) runs past the "
                       f"end of the table ({len(data) - _FOOTER_BYTES} bytes before the footer); "
                       f"the file is truncated or not a checkpoint index")
        kind = data[offset + size]
        stored = int.from_bytes(data[offset + size + 1:offset + size + 5], "little")
        if crc32c(memoryview(data)[offset:offset + size + 1]) != _unmask(stored):
            self._fail(f"{what} block at byte {offset} fails its CRC32C check (the file is "
                       f"corrupt)")
        if kind == 1:
            self._fail(f"{what} block at byte {offset} is snappy-compressed, which this reader "
                       f"does not decompress (TensorFlow writes checkpoint indexes uncompressed); "
                       f"read this checkpoint with TensorFlow")
        if kind != 0:
            self._fail(f"{what} block at byte {offset} has unknown compression type {kind}")
        return memoryview(data)[offset:offset + size]

    def _block_entries(self, block: memoryview, what: str):
        """The (key bytes, value memoryview) pairs of a block, in order."""
        n = len(block)
        if n < 4:
            self._fail(f"{what} block of {n} bytes is shorter than its restart count")
        num_restarts = int.from_bytes(block[n - 4:], "little")
        limit = n - 4 - 4 * num_restarts
        if num_restarts < 1 or limit < 0:
            self._fail(f"{what} block of {n} bytes cannot hold its {num_restarts} restart points")
        for i in range(num_restarts):
            restart = int.from_bytes(block[limit + 4 * i:limit + 4 * i + 4], "little")
            if restart > limit:
                self._fail(f"{what} block restart point {i} at byte {restart} lies outside its "
                           f"{limit} bytes of entries")
        pos, key = 0, b""
        desc = lambda: f"checkpoint index {self.index_path}: {what} block entry at byte {pos}"  # noqa: E731
        while pos < limit:
            start = pos
            shared, pos = _varint(block, pos, limit, desc, 5)
            unshared, pos = _varint(block, pos, limit, desc, 5)
            value_len, pos = _varint(block, pos, limit, desc, 5)
            if shared > len(key) or (start == 0 and shared):
                self._fail(f"{what} block entry at byte {start} shares {shared} bytes with a "
                           f"previous key of {len(key)} bytes")
            if unshared + value_len > limit - pos:
                self._fail(f"{what} block entry at byte {start} ({unshared} key + {value_len} "
                           f"value bytes) runs past its block's {limit} bytes of entries")
            key = key[:shared] + bytes(block[pos:pos + unshared])
            pos += unshared
            yield key, block[pos:pos + value_len]
            pos += value_len

    def _parse_index(self, data: bytes) -> None:
        n = len(data)
        if n < _FOOTER_BYTES:
            self._fail(f"{n} bytes, shorter than the {_FOOTER_BYTES}-byte table footer; the file "
                       f"is truncated or not a checkpoint index")
        footer = data[n - _FOOTER_BYTES:]
        if int.from_bytes(footer[40:], "little") != _MAGIC:
            self._fail("bad magic number at the end of the file: not a TensorFlow checkpoint "
                       "index (or truncated)")
        what = lambda: f"checkpoint index {self.index_path}: table footer"  # noqa: E731
        meta_offset, meta_size, pos = _block_handle(footer, 0, 40, what)
        index_offset, index_size, _ = _block_handle(footer, pos, 40, what)
        self._block(data, meta_offset, meta_size, "metaindex")  # unused by bundles; checked
        index = self._block(data, index_offset, index_size, "index")
        table_end = 0  # the data blocks lie in order, before the index block, without overlap
        last_key = None
        for sep, handle in self._block_entries(index, "index"):
            offset, size, used = _block_handle(
                handle, 0, len(handle), lambda: f"checkpoint index {self.index_path}: block handle")
            if used != len(handle):
                self._fail(f"index entry {sep!r}: {len(handle) - used} stray bytes after its "
                           f"block handle")
            if offset < table_end or offset + size + _TRAILER_BYTES > index_offset:
                self._fail(f"data block at byte {offset} ({size} bytes) overlaps another block "
                           f"or the index block")
            table_end = offset + size + _TRAILER_BYTES
            for raw_key, value in self._block_entries(self._block(data, offset, size, "data"),
                                                      "data"):
                if last_key is not None and raw_key <= last_key:
                    self._fail(f"keys out of order: {raw_key!r} after {last_key!r}")
                last_key = raw_key
                if last_key == b"":
                    self._parse_header(bytes(value))
                    continue
                if self.num_shards is None:
                    self._fail("no header entry (the empty key) before the tensors")
                if raw_key[:1] == b"\x00":  # one slice of a sliced tensor (an encoded name)
                    self._slices[raw_key] = self._parse_entry(f"slice {raw_key!r}", bytes(value))
                    continue
                try:
                    key = raw_key.decode("utf-8")
                except UnicodeDecodeError:
                    self._fail(f"tensor name {raw_key!r} is not UTF-8")
                self._entries[key] = self._parse_entry(key, bytes(value))
        if self.num_shards is None:
            self._fail("no header entry (the empty key): not a checkpoint bundle")

    def _parse_header(self, value: bytes) -> None:
        what = lambda: f"checkpoint index {self.index_path}: header"  # noqa: E731
        fields = _fields(value, what)
        num_shards = _int64(_scalar(fields, 1, 0, what))
        endianness = _scalar(fields, 2, 0, what)
        version = _fields(_message(fields, 3, what), what)
        min_consumer = _int64(_scalar(version, 2, 0, what))
        bad = [_int64(v) for n, w, v in version if n == 3 and w == 0]
        if not 1 <= num_shards <= 99999:
            self._fail(f"header gives {num_shards} data shards (expected 1 to 99999)")
        if endianness != 0:
            self._fail("the bundle is big-endian; this reader reads little-endian bundles only "
                       "(read it with TensorFlow)")
        if min_consumer > 1 or 1 in bad:
            self._fail(f"written by a newer TensorFlow (bundle format consumer version "
                       f"{min_consumer}, bad consumers {bad}); this reader knows version 1")
        self.num_shards = num_shards

    def _parse_entry(self, key: str, value: bytes) -> _Entry:
        what = lambda: f"checkpoint index {self.index_path} (entry {key!r})"  # noqa: E731
        fields = _fields(value, what)
        dtype = _scalar(fields, 1, 0, what)
        shape_fields = _fields(_message(fields, 2, what), what)
        if _scalar(shape_fields, 3, 0, what):
            self._fail("unknown rank", key)
        dims = []
        for n, w, v in shape_fields:
            if n == 2:
                if w != 2:
                    self._fail(f"shape dim has wire type {w}", key)
                dims.append(_int64(_scalar(_fields(v, what), 1, 0, what)))
        if any(d < 0 for d in dims) or len(dims) > _MAX_RANK:
            self._fail(f"invalid shape {dims} (rank at most {_MAX_RANK}, sizes >= 0)", key)
        count = math.prod(dims)
        if math.prod(d for d in dims if d) >= 1 << 58:  # x 16 bytes (complex128) fits numpy
            self._fail(f"shape {dims} has too many elements", key)
        shard = _int64(_scalar(fields, 3, 0, what))
        offset = _int64(_scalar(fields, 4, 0, what))
        size = _int64(_scalar(fields, 5, 0, what))
        crc = _scalar(fields, 6, 5, what)
        sliced = [self._parse_slice(key, v, dims, what) for n, w, v in fields if n == 7 and w == 2]
        if any(n == 7 and w != 2 for n, w, _ in fields):
            self._fail("slices field of the wrong wire type", key)
        if not sliced:
            if not 0 <= shard < self.num_shards:
                self._fail(f"shard {shard} outside the bundle's {self.num_shards} shard(s)", key)
            if offset < 0 or size < 0:
                self._fail(f"negative offset {offset} or size {size}", key)
            if dtype in _DTYPES:
                itemsize = 2 if _DTYPES[dtype] is None else np.dtype(_DTYPES[dtype]).itemsize
                if size != count * itemsize:
                    self._fail(f"size {size} bytes, but {_DTYPE_NAMES[dtype]} {dims} takes "
                               f"{count * itemsize}", key)
            elif dtype == _DT_STRING:
                if size < count + 4 * (count > 0):
                    self._fail(f"size {size} bytes is too small for {count} strings", key)
        return _Entry(dtype, dims, shard, offset, size, crc, sliced)

    def _parse_slice(self, key: str, value: bytes, dims: list[int], what) -> list[tuple[int, int]]:
        """A TensorSliceProto: (start, length) per dimension; length -1 is the whole extent (a
        dimension without an extent, or an extent without a length)."""
        extents = []
        for n, w, v in _fields(value, what):
            if n == 1:
                if w != 2:
                    self._fail(f"slice extent has wire type {w}", key)
                ext = _fields(v, what)
                start = _int64(_scalar(ext, 1, 0, what))
                has_length = any(m == 2 for m, _, _ in ext)
                length = _int64(_scalar(ext, 2, 0, what)) if has_length else -1
                extents.append((start, length))
        if not extents:
            extents = [(0, -1)] * len(dims)
        if len(extents) != len(dims):
            self._fail(f"a slice of {len(extents)} extents for a tensor of rank {len(dims)}", key)
        for (start, length), dim in zip(extents, dims):
            full = length == -1 and start == 0
            if not full and not (0 <= start and 0 <= length and start + length <= dim):
                self._fail(f"slice extent start {start} length {length} outside a dimension of "
                           f"{dim}", key)
        return extents

    # ------------------------------------------------------------------ public
    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        """name -> shape, every tensor (what `tf.train.list_variables` gives)."""
        return {k: list(e.shape) for k, e in self._entries.items()}

    def get_variable_to_dtype_map(self) -> dict[str, np.dtype]:
        """name -> numpy dtype (a dtype TensorFlow has but numpy lacks: None)."""
        return {k: self._np_dtype(e.dtype) for k, e in self._entries.items()}

    def dtype_name(self, name: str) -> str:
        """TensorFlow's name of the tensor's dtype ('float32', 'int64', 'bfloat16', ...)."""
        dtype = self._entry(name).dtype
        return _DTYPE_NAMES.get(dtype, f"DataType {dtype}")

    def has_tensor(self, name: str) -> bool:
        return name in self._entries

    def where(self, name: str) -> str:
        """The data file holding a tensor (for messages)."""
        entry = self._entry(name)
        return data_filename(self.prefix, entry.shard, self.num_shards)

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"tensor {name!r} not found in checkpoint {self.prefix}") from None

    @staticmethod
    def _np_dtype(dtype: int):
        if dtype == _DT_STRING:
            return np.dtype(object)
        if dtype == 14:
            try:
                import ml_dtypes
            except ImportError:
                return None
            return np.dtype(ml_dtypes.bfloat16)
        spec = _DTYPES.get(dtype)
        return np.dtype(spec) if spec else None

    def get_tensor(self, name: str):
        """One tensor, read from its shard and checked against its CRC32C: a numpy array, or for
        a scalar a numpy scalar (bytes for a string), as TensorFlow's reader returns them. A
        tensor stored in slices (a partitioned variable, tf.train.Checkpoint's
        MaxShardSizePolicy) is put together from them."""
        entry = self._entry(name)
        value = self._read_sliced(name, entry) if entry.sliced else self._read(name, entry)
        return value[()] if not entry.shape else value  # a scalar as TensorFlow's reader gives it

    def _read_sliced(self, name: str, entry: _Entry) -> np.ndarray:
        def fail(message):
            raise BundleFormatError(f"checkpoint {self.prefix} (tensor {name!r}): {message}")

        np_dtype = self._np_dtype(entry.dtype)
        if np_dtype is None:
            fail(f"dtype {_DTYPE_NAMES.get(entry.dtype, entry.dtype)} is not supported")
        parts = []
        for extents in entry.sliced:
            box = [(0, dim) if length == -1 else (start, start + length)
                   for (start, length), dim in zip(extents, entry.shape)]
            part = self._slices.get(_slice_key(name, extents))
            if part is None:
                fail(f"its slice {box} is missing from the index")
            if part.dtype != entry.dtype or part.shape != [b - a for a, b in box]:
                fail(f"its slice {box} is stored as {_DTYPE_NAMES.get(part.dtype, part.dtype)} "
                     f"{part.shape}")
            parts.append((box, part))
        if sum(math.prod(b - a for a, b in box) for box, _ in parts) != math.prod(entry.shape):
            fail(f"its {len(parts)} slices do not cover its shape {entry.shape} exactly")
        # before allocating the tensor: its slices are bytes of the data files, not a claim
        shards = {part.shard for _, part in parts}
        on_disk = sum(self._data_size(s, data_filename(self.prefix, s, self.num_shards), name)
                      for s in shards)
        if sum(part.size for _, part in parts) > on_disk:
            fail(f"its slices claim more bytes than its data files hold ({on_disk})")
        out = np.empty(entry.shape, np_dtype)
        covered = np.zeros(entry.shape, bool)
        for box, part in parts:
            where = tuple(slice(a, b) for a, b in box)
            if covered[where].any():
                fail(f"its slice {box} overlaps another")
            covered[where] = True
            out[where] = self._read(f"{name} {box}", part)
        return out

    def _read(self, name: str, entry: _Entry) -> np.ndarray:
        """The array of an unsliced entry, its CRC32C checked."""
        path = data_filename(self.prefix, entry.shard, self.num_shards)

        def fail(message):
            raise BundleFormatError(f"checkpoint data file {path} (tensor {name!r}): {message}")

        np_dtype = self._np_dtype(entry.dtype)
        if np_dtype is None:
            extra = " (install ml_dtypes)" if entry.dtype == 14 else ""
            fail(f"dtype {_DTYPE_NAMES.get(entry.dtype, entry.dtype)} is not supported{extra}")
        size = self._data_size(entry.shard, path, name)
        if entry.offset + entry.size > size:
            fail(f"bytes [{entry.offset}, {entry.offset + entry.size}) lie past the end of the "
                 f"file ({size} bytes); the file is truncated")
        raw = np.empty(entry.size, np.uint8)
        try:
            with open(path, "rb") as f:
                f.seek(entry.offset)
                got = f.readinto(memoryview(raw)) if entry.size else 0
        except OSError as e:
            fail(f"cannot read: {e.strerror or e}")
        if got != entry.size:
            fail(f"read {got} of {entry.size} bytes at byte {entry.offset}; the file is truncated")
        if entry.dtype == _DT_STRING:
            return self._strings(raw, entry, fail, f"checkpoint data file {path} (tensor {name!r})")
        if entry.size and crc32c(raw) != _unmask(entry.crc):
            fail("the data fails its CRC32C check (the file is corrupt)")
        return raw.view(np_dtype).reshape(entry.shape)

    def _strings(self, raw: np.ndarray, entry: _Entry, fail, where: str) -> np.ndarray:
        count = math.prod(entry.shape)
        buf = raw.tobytes()
        end = len(buf)
        pos = 0
        lengths, checksummed = [], bytearray()
        for _ in range(count):
            n, pos = _varint(buf, pos, end, lambda: f"{where}: string length at byte {pos}")
            lengths.append(n)
            checksummed += struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n)
        if end:  # TensorFlow writes the lengths' checksum whenever it writes anything
            if pos + 4 > end:
                fail("truncated string lengths checksum")
            stored = buf[pos:pos + 4]
            if _unmask(int.from_bytes(stored, "little")) != crc32c(bytes(checksummed)):
                fail("the string lengths fail their CRC32C check (the file is corrupt)")
            checksummed += stored
            pos += 4
        if sum(lengths) != end - pos:
            fail(f"the strings take {sum(lengths)} bytes, the entry leaves {end - pos}")
        values = np.empty(count, dtype=object)
        for i, n in enumerate(lengths):
            values[i] = buf[pos:pos + n]
            pos += n
        checksummed += buf[end - sum(lengths):]
        if entry.size and crc32c(bytes(checksummed)) != _unmask(entry.crc):
            fail("the data fails its CRC32C check (the file is corrupt)")
        return values.reshape(entry.shape)

    def _data_size(self, shard: int, path: str, name: str) -> int:
        if shard not in self._data_sizes:
            try:
                self._data_sizes[shard] = os.path.getsize(path)
            except OSError as e:
                raise BundleFormatError(
                    f"checkpoint data file {path} (tensor {name!r}): cannot read: "
                    f"{e.strerror or e}") from None
        return self._data_sizes[shard]
