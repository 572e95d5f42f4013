"""LTP legacy word segmentation in native code: the default ``ltp:PATH`` segmenter.

It reads the model files ``ltp-extension`` reads (LTP's Avro model file, bare or in LTP's hub
folder layout) and gives exactly ``ltp-extension``'s words (``CWSModel.batch_predict``, version
0.1.13 with its default features), several times faster, in batches over threads with the GIL
released (csrc/ltp_cws.h). ``ltp-extension`` is not needed at all; it stays selectable as
``ltp-rust:PATH`` and is the reference of the tests.

The model file is an Avro object container (magic ``Obj\\x01``, a header with the schema and the
codec, then blocks of records, each followed by a 16-byte sync marker), read by ltp.py's
``read_container_header`` and ``read_container_blocks`` (the ``ltp-rust`` check reads it the
same way). This module checks its schema and codec and inflates its blocks; the record itself
(LTP's ``cws`` record: an empty ``definition``, a ``features`` map from feature string to index,
a ``parameters`` array of doubles) is decoded and validated in C++. A file this segmenter cannot
read -- truncated or damaged, another LTP task's model (POS, NER), a schema it does not know, a
JSON model -- is a ``ValueError`` naming the file, never a wrong segmentation.
"""

from __future__ import annotations

import hashlib
import json
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .. import _check_build  # noqa: F401
from .. import _ltp_cws
from ..alignment import WordSpans
from ._spans import empty_spans
from .base import Segmenter, _check_lines
from .ltp import (container_schema, not_valid, read_container_blocks, read_container_header,
                  resolve_legacy_model)

__all__ = ["LTPNativeSegmenter", "load_ltp_model", "read_model_blocks"]

# LTP's cws record (rust/ltp/vendor/schema/cws.avsc) as the Avro writer stores it.
_CWS_SCHEMA = {
    "type": "record", "name": "cws",
    "fields": [
        {"name": "definition", "type": {"type": "record", "name": "definition", "fields": []}},
        {"name": "features", "type": {"type": "map", "values": "long"}},
        {"name": "parameters", "type": {"type": "array", "items": "double"}},
    ],
}
# Attributes that do not change how a datum is encoded.
_SCHEMA_NOTES = ("default", "doc", "aliases", "namespace", "order")


def _normal_schema(schema):
    if isinstance(schema, dict):
        return {k: _normal_schema(v) for k, v in schema.items() if k not in _SCHEMA_NOTES}
    if isinstance(schema, list):
        return [_normal_schema(v) for v in schema]
    return schema


def read_model_blocks(path: str, data: bytes, inflate: bool = True) -> List[Tuple[int, bytes]]:
    """The blocks of an LTP legacy CWS model file: ``(record count, inflated bytes)`` each.

    Checks the container (magic, header, schema, codec, block sizes, sync markers; with
    ``inflate``, that each block inflates completely). ``inflate=False`` checks the framing only
    and returns the blocks as stored. Raises ValueError naming ``path`` and the problem.
    """
    if path.endswith(".json"):
        raise ValueError(
            f"LTP model file {path!r} is a JSON model: the native LTP segmenter reads LTP's Avro "
            f"model files only (ltp-extension parses JSON weights with a float parser that can "
            f"differ in the last bit, so the words could differ); use the segmenter "
            f"'ltp-rust:{path}' or save the model without the .json suffix")
    meta, sync, cur = read_container_header(path, data)
    schema = container_schema(path, meta)
    if _normal_schema(schema) != _CWS_SCHEMA:
        raise ValueError(
            f"LTP model file {path!r} has a record schema this segmenter does not know (another "
            f"LTP version?): {json.dumps(schema)[:300]}; use the segmenter 'ltp-rust:{path}' "
            f"if ltp-extension reads it")
    codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
    if codec not in ("null", "deflate"):
        raise ValueError(f"LTP model file {path!r} uses the Avro codec {codec!r}; this segmenter "
                         f"reads 'deflate' (LTP's) and 'null' only")
    blocks = list(read_container_blocks(path, cur, sync, inflate and codec == "deflate"))
    if not any(count for count, _ in blocks):
        raise not_valid(path, "no model record (truncated file?)")
    return blocks


def load_ltp_model(path: str, data: Optional[bytes] = None) -> "_ltp_cws.Model":
    """The native model of an LTP legacy CWS model file (``data``: its bytes, if already read)."""
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"cannot read LTP model file {path!r}: {e}") from None
    blocks = [b for b in read_model_blocks(path, data) if b[0]]
    try:
        for count, payload in blocks[:-1]:  # every record must decode (LTP fails otherwise)
            _ltp_cws.Model.check_avro_block(payload, count)
        return _ltp_cws.Model.from_avro_block(*blocks[-1][::-1])  # the last one is the model
    except ValueError as e:
        raise not_valid(path, str(e)) from None


def _as_lines(lines) -> List[str]:
    """``lines`` as a list; its items are checked by the join in ``_encode_lines`` (a full
    ``_check_lines`` pass costs 5% of a whole segmentation)."""
    if isinstance(lines, list) and not isinstance(lines, (str, bytes)):
        return lines
    return _check_lines(lines)


def _encode_lines(lines: List[str], source: Optional[str], line_offset: int) -> bytes:
    try:
        text = "".join(lines)
    except TypeError:
        _check_lines(lines)  # raises the TypeError that names the problem
        raise
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        for i, line in enumerate(lines):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as e:
                where = f"{source}: line {line_offset + i + 1}" if source else f"lines[{i}]"
                raise ValueError(f"{where}: character {e.start} ({line[e.start]!r}) is a lone "
                                 f"surrogate, which is not text (LTP cannot segment it)") from None
        raise


class LTPNativeSegmenter(Segmenter):
    """LTP legacy word segmentation, native: ``ltp-extension``'s words, faster.

    Parameters
    ----------
    path : str
        A CWS model file (``cws_model.bin`` of ``LTP/legacy``, or one trained with
        ``wwm-fast train-segmenter``), or a folder in LTP's hub layout.
    num_threads : int, default 1
        Threads per ``segment_batch`` call (-1 = all cores); the words do not depend on it.
    fingerprint : str, optional
        12 hex digits of the model's sha256 (from a recorded spec): a model file whose content
        changed is refused.

    The file's container and schema are checked here; the model is loaded (inflated, decoded,
    validated) on first use or by ``load()``.
    """

    kind = "ltp-legacy"

    def __init__(self, path: str, num_threads: int = 1, fingerprint: Optional[str] = None):
        model_file = resolve_legacy_model(path)
        data = self._read(model_file)
        digest = hashlib.sha256(data).hexdigest()[:12]
        if fingerprint is not None and fingerprint != digest:
            raise ValueError(
                f"LTP model file {model_file!r} has changed since it was recorded "
                f"(sha256 {digest}..., expected {fingerprint}...): re-segment with the new model")
        read_model_blocks(model_file, data, inflate=False)
        super().__init__(f"ltp-legacy:{model_file}#{digest}", num_threads)
        self.model_file = model_file
        self._digest = digest
        self._model = None

    @staticmethod
    def _read(model_file: str) -> bytes:
        try:
            with open(model_file, "rb") as f:
                return f.read()
        except OSError as e:
            raise ValueError(f"cannot read LTP model file {model_file!r}: {e}") from None

    def load(self) -> "_ltp_cws.Model":
        """Load the model now (it is otherwise loaded by the first ``segment_batch``)."""
        if self._model is None:
            data = self._read(self.model_file)
            if hashlib.sha256(data).hexdigest()[:12] != self._digest:
                raise ValueError(f"LTP model file {self.model_file!r} has changed since this "
                                 f"segmenter was created: create it again")
            self._model = load_ltp_model(self.model_file, data)
        return self._model

    def _run(self, lines: Sequence[str], ltp_words: bool, source, line_offset):
        data = _encode_lines(lines, source, line_offset)
        splits = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)), out=splits[1:])
        return self.load().segment(data, splits, True, ltp_words, self.num_threads)

    def segment_utf8(self, data: bytes, row_splits: np.ndarray, *,
                     splits_in_chars: bool = False) -> WordSpans:
        """``segment_batch`` of rows already in UTF-8: row ``i`` is ``data[row_splits[i]:
        row_splits[i + 1]]`` (int64 byte offsets, ``len(rows) + 1`` of them, from 0 to
        ``len(data)``), or the code points from ``row_splits[i]`` to ``row_splits[i + 1]`` with
        ``splits_in_chars``. The spans are code point offsets into each row, as from
        ``segment_batch``. Byte offsets spare the kernel a pass over the text (it would count the
        code points to find them); the UTF-8 and the offsets are checked natively (ValueError
        naming the row). Used by ``--convert``, whose converter writes UTF-8 and both offsets."""
        splits = np.ascontiguousarray(row_splits, dtype=np.int64)
        if splits.ndim != 1 or len(splits) == 0:
            raise ValueError(f"row_splits must be a 1-D array of len(rows) + 1 offsets, got "
                             f"shape {splits.shape}")
        return WordSpans(*self.load().segment(data, splits, splits_in_chars, False,
                                              self.num_threads))

    def segment_batch(self, lines: Sequence[str], *, source: Optional[str] = None,
                      line_offset: int = 0) -> WordSpans:
        """Segment many lines; ``lines[i]``'s words are row ``i`` of the result (spans straight
        from the kernel: the same as the base class builds from LTP's word strings)."""
        lines = _as_lines(lines)
        if not lines:
            return empty_spans(0)
        return WordSpans(*self._run(lines, False, source, line_offset))

    def ltp_words(self, lines: Sequence[str]) -> List[List[str]]:
        """LTP's own words of each line, exactly ``CWSModel.batch_predict(lines)``: whitespace
        glued onto the preceding word, leading whitespace dropped."""
        lines = _as_lines(lines)
        if not lines:
            return []
        starts, ends, rs = self._run(lines, True, None, 0)
        starts, ends, rs = starts.tolist(), ends.tolist(), rs.tolist()
        return [[line[s:e] for s, e in zip(starts[rs[i]:rs[i + 1]], ends[rs[i]:rs[i + 1]])]
                for i, line in enumerate(lines)]

    def _segment(self, lines: List[str]) -> Sequence[Sequence[str]]:
        return self.ltp_words(lines)

    def close(self) -> None:
        self._model = None
