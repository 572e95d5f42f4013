"""The segmentation cache: one file per input shard, holding the original text and its words.

``wwm-fast segment`` writes them, ``create`` reads them, so the 128 and 512 phases and every dupe
pass reuse one segmentation. A cache is lossless: ``data`` is the input file's bytes verbatim
(after gunzip), so tokenizing ``data`` gives exactly the tokens of the input file.

File layout (all integers little-endian)::

    offset 0   8 bytes   magic b"WWMSEG\\x00" + format version (1 byte, currently 1)
    offset 8   uint64    H = length of the JSON header
    offset 16  H bytes   JSON header (UTF-8), see below
    16 + H     sections, back to back, in the order of header["sections"]

Header: ``segmenter`` (the spec), ``source`` (absolute input path), ``source_size`` and
``source_mtime_ns`` (of the input file on disk), ``data_sha256`` (of the uncompressed data),
``errors`` (UTF-8 decode policy of the lines), ``n_lines``, ``n_words``, ``n_unmatched``, and
``sections``: a list of ``{name, codec ("none"|"zlib"), size (stored bytes), raw_size, crc32 (of
the raw bytes)}`` for ``data`` (bytes), ``starts`` and ``ends`` (int32 [n_words], code point
offsets into each line) and ``row_splits`` (int64 [n_lines + 1]). Lines are ``decode_lines(data,
errors)``: split on ``\\n`` only, ``\\r`` removed, as the tokenizer's file reader sees them.

A cache is written under a temporary name and renamed when complete, so a file with the final
name is always whole; the CRC32 of every section is checked on reading.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import NamedTuple, Optional

import numpy as np

from ..alignment import WordSpans
from ..files import atomic_output

__all__ = ["SegmentedShard", "is_cache_file", "read_cache", "read_cache_header", "write_cache",
           "CACHE_SUFFIX", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"WWMSEG\x00"
FORMAT_VERSION = 1
CACHE_SUFFIX = ".wwmseg"
_FORMAT_NAME = "wwm_fast segmentation cache"
_ARRAYS = (("starts", "<i4"), ("ends", "<i4"), ("row_splits", "<i8"))
_MAX_HEADER = 1 << 24


class SegmentedShard(NamedTuple):
    """One input shard and its word segmentation, as stored in a segmentation cache.

    ``data`` is the input file's bytes verbatim (gunzipped); ``words`` has one row per line of
    ``decode_lines(data, errors)``; ``segmenter`` is the spec of the segmenter that made it.
    """

    data: bytes
    errors: str
    words: WordSpans
    source: str
    segmenter: str
    n_lines: int
    header: dict


def count_lines(data: bytes) -> int:
    """Lines of ``decode_lines(data)``: split on ``\\n``, a final line without ``\\n`` counts."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def is_cache_file(path) -> bool:
    """True when ``path`` starts with the cache magic bytes (cheap: reads 8 bytes)."""
    try:
        with open(os.fspath(path), "rb") as f:
            head = f.read(len(MAGIC) + 1)
    except OSError:
        return False
    return len(head) == len(MAGIC) + 1 and head[:len(MAGIC)] == MAGIC


def _read_header(f, path: str) -> dict:
    head = f.read(16)
    if len(head) < 16 or head[:len(MAGIC)] != MAGIC:
        raise ValueError(f"{path!r} is not a wwm_fast segmentation cache (wrong magic bytes)")
    version = head[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise ValueError(
            f"segmentation cache {path!r} has format version {version}, this wwm_fast reads "
            f"version {FORMAT_VERSION}: re-run `wwm-fast segment` with this version")
    (size,) = struct.unpack("<Q", head[8:16])
    if size > _MAX_HEADER:
        raise ValueError(f"segmentation cache {path!r} is corrupt (header size {size})")
    raw = f.read(size)
    if len(raw) != size:
        raise ValueError(f"segmentation cache {path!r} is truncated (in the header)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ValueError(f"segmentation cache {path!r} is corrupt (unreadable header)") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT_NAME:
        raise ValueError(f"segmentation cache {path!r} is corrupt (bad header)")
    header["_payload_offset"] = 16 + size
    return header


def read_cache_header(path) -> dict:
    """The JSON header of a cache (cheap: does not read the sections)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return _read_header(f, path)
    except OSError as e:
        raise ValueError(f"cannot read segmentation cache {path!r}: {e}") from None


def read_cache(path) -> SegmentedShard:
    """Read and verify a segmentation cache (magic, version, CRC32 of every section, shapes)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            header = _read_header(f, path)
            sections = {}
            for sec in header.get("sections", []):
                stored = f.read(int(sec["size"]))
                if len(stored) != int(sec["size"]):
                    raise ValueError(f"segmentation cache {path!r} is truncated "
                                     f"(in section {sec['name']!r})")
                if sec["codec"] == "zlib":
                    try:
                        raw = zlib.decompress(stored)
                    except zlib.error:
                        raise ValueError(f"segmentation cache {path!r} is corrupt (section "
                                         f"{sec['name']!r} does not decompress)") from None
                elif sec["codec"] == "none":
                    raw = stored
                else:
                    raise ValueError(f"segmentation cache {path!r}: unknown codec "
                                     f"{sec['codec']!r}")
                if len(raw) != int(sec["raw_size"]) or zlib.crc32(raw) != int(sec["crc32"]):
                    raise ValueError(f"segmentation cache {path!r} is corrupt (section "
                                     f"{sec['name']!r} fails its CRC32 check)")
                sections[sec["name"]] = raw
    except OSError as e:
        raise ValueError(f"cannot read segmentation cache {path!r}: {e}") from None
    except (KeyError, TypeError) as e:
        raise ValueError(f"segmentation cache {path!r} is corrupt (header: {e})") from None
    missing = [n for n in ("data",) + tuple(a for a, _ in _ARRAYS) if n not in sections]
    if missing:
        raise ValueError(f"segmentation cache {path!r} is corrupt (missing sections {missing})")
    arrays = {name: np.frombuffer(sections[name], dtype=dt).astype(dt[1:], copy=False)
              for name, dt in _ARRAYS}
    n_lines = int(header["n_lines"])
    n_words = int(header["n_words"])
    data = sections["data"]
    rs = arrays["row_splits"]
    if (len(rs) != n_lines + 1 or len(arrays["starts"]) != n_words
            or len(arrays["ends"]) != n_words or (n_lines >= 0 and len(rs) and
                                                  (rs[0] != 0 or rs[-1] != n_words))
            or count_lines(data) != n_lines):
        raise ValueError(f"segmentation cache {path!r} is corrupt (inconsistent sizes)")
    header.pop("_payload_offset", None)
    words = WordSpans(arrays["starts"], arrays["ends"], rs)
    return SegmentedShard(data, header["errors"], words, header["source"], header["segmenter"],
                          n_lines, header)


def write_cache(path, data: bytes, words: WordSpans, *, segmenter: str, source: str,
                errors: str = "strict", compress: bool = True, extra: Optional[dict] = None) -> dict:
    """Write a cache atomically (temporary name, then rename). Returns the header.

    ``words`` must have one row per line of ``decode_lines(data, errors)``.
    """
    import hashlib

    n_lines = count_lines(data)
    rs = np.ascontiguousarray(words.row_splits, dtype="<i8")
    starts = np.ascontiguousarray(words.starts, dtype="<i4")
    ends = np.ascontiguousarray(words.ends, dtype="<i4")
    if len(rs) != n_lines + 1:
        raise ValueError(f"words cover {len(rs) - 1} lines but the data has {n_lines}")
    if len(starts) != len(ends) or (len(rs) and int(rs[-1]) != len(starts)):
        raise ValueError("words are inconsistent: starts/ends/row_splits sizes differ")
    header = {
        "format": _FORMAT_NAME,
        "version": FORMAT_VERSION,
        "segmenter": segmenter,
        "source": source,
        "errors": errors,
        "n_lines": n_lines,
        "n_words": int(len(starts)),
        "data_sha256": hashlib.sha256(data).hexdigest(),
    }
    try:
        st = os.stat(source)
        header["source_size"] = st.st_size
        header["source_mtime_ns"] = st.st_mtime_ns
    except OSError:
        pass
    from .. import __version__

    header["wwm_fast_version"] = __version__
    if extra:
        header.update(extra)
    blobs = []
    sections = []
    for name, raw in (("data", bytes(data)), ("starts", starts.tobytes()),
                      ("ends", ends.tobytes()), ("row_splits", rs.tobytes())):
        stored = zlib.compress(raw, 1) if compress else raw
        codec = "zlib" if compress else "none"
        sections.append({"name": name, "codec": codec, "size": len(stored),
                         "raw_size": len(raw), "crc32": zlib.crc32(raw)})
        blobs.append(stored)
    header["sections"] = sections
    head = json.dumps(header, ensure_ascii=False, sort_keys=True).encode("utf-8")
    with atomic_output(path, "wb") as f:
        f.write(MAGIC + bytes([FORMAT_VERSION]))
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    return header
