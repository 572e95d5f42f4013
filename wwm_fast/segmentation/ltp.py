"""LTP segmenters: legacy (averaged perceptron, ``ltp-extension``) and neural (``ltp`` + torch).

Two segmenter kinds (``ltp``/``ltp-legacy``, ``ltp-neural``, built by registry.py); they must not
import the registry.

BERT-wwm (HFL) segmented its pre-training text with LTP. Both packages are imported lazily, so
wwm_fast works without them until an LTP segmenter is asked for.

LTP legacy quirks this module absorbs (see ``_spans``): whitespace is glued onto neighbouring
words (``"中国 "``), leading whitespace is dropped, and a line of whitespace returns no word.
A truncated model file makes ``ltp-extension`` abort the whole process (a Rust panic, not an
exception), so model files are checked before they are handed to it (``check_model_file``).
The model file's Avro container is read here for both legacy segmenters
(``read_container_header``, ``read_container_blocks``; ``ltp_native`` reads its record).
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Iterator, List, Optional, Sequence, Tuple

from .base import Segmenter, abspath, sha256_file

__all__ = ["LTPLegacySegmenter", "LTPNeuralSegmenter", "resolve_legacy_model", "check_model_file",
           "read_container_header", "read_container_blocks", "container_schema"]

_HUB_CONFIG = "config.json"
_AVRO_MAGIC = b"Obj\x01"

# The Rust thread pool of ltp-extension (rayon) is global and sized once, at its first parallel
# call in the process, from RAYON_NUM_THREADS. Remember what this process asked for.
_rayon_threads: Optional[int] = None


def _first_line(e: BaseException) -> str:
    # ltp-extension's errors carry a Rust backtrace when RUST_BACKTRACE is set
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _import_ltp_extension():
    try:
        from ltp_extension.perceptron import CWSModel
    except ImportError:
        raise ValueError(
            "segmenter 'ltp-rust' needs the package ltp-extension, which is not installed: "
            "pip install 'wwm-fast[ltp]' (or use 'ltp:PATH', native, which does not)") from None
    return CWSModel


def resolve_legacy_model(path: str) -> str:
    """The CWS model file for ``path``: the file itself, or the cws file of an LTP hub folder."""
    path = abspath(path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        config_file = os.path.join(path, _HUB_CONFIG)
        if os.path.isfile(config_file):
            try:
                with open(config_file, encoding="utf-8") as f:
                    config = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"LTP model folder {path!r}: cannot read {_HUB_CONFIG}: {e}")
            if not isinstance(config, dict):
                raise ValueError(f"LTP model folder {path!r}: {_HUB_CONFIG} is not a JSON object")
            # LTP spells the key "nerual"
            if config.get("nerual") or config.get("neural"):
                raise ValueError(
                    f"LTP model folder {path!r} holds a neural model ({_HUB_CONFIG} says so); "
                    f"use the segmenter 'ltp-neural:{path}'")
            tasks = config.get("tasks")
            if not isinstance(tasks, dict) or not tasks.get("cws"):
                raise ValueError(f"LTP model folder {path!r}: {_HUB_CONFIG} has no tasks.cws "
                                 f"entry naming the word segmentation model")
            model = os.path.join(path, str(tasks["cws"]))
            if not os.path.isfile(model):
                raise ValueError(f"LTP model folder {path!r}: the cws model {tasks['cws']!r} "
                                 f"named in {_HUB_CONFIG} is missing")
            return model
        for name in ("cws_model.bin", "cws.bin"):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ValueError(f"LTP model folder {path!r} has neither {_HUB_CONFIG} nor "
                         f"cws_model.bin")
    raise ValueError(
        f"LTP model not found: {path!r} is neither a file nor a folder (wwm-fast never "
        f"downloads models: give a local file or folder, e.g. a copy of LTP/legacy, or train one "
        f"with `wwm-fast train-segmenter`)")


class _Bytes:
    """A cursor over a model file's bytes with Avro's zig-zag varints."""

    def __init__(self, buf: bytes, pos: int = 0):
        self.buf = buf
        self.pos = pos

    def long(self) -> int:
        shift = result = 0
        buf, pos = self.buf, self.pos
        while True:
            if pos >= len(buf):
                raise ValueError("the file ends inside an integer (truncated file?)")
            if shift > 63:
                raise ValueError("an integer longer than 10 bytes")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        self.pos = pos
        return (result >> 1) ^ -(result & 1)

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"{what} runs past the end of the file (truncated file?)")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def not_valid(path: str, what: str) -> ValueError:
    """The error for a damaged LTP legacy model file."""
    return ValueError(f"LTP model file {path!r} is not a valid LTP legacy model ({what}); "
                      f"re-download or re-train it")


def read_container_header(path: str, data: bytes) -> Tuple[dict, bytes, _Bytes]:
    """The header of an LTP legacy model file, an Avro object container (magic ``Obj\\x01``,
    metadata, a 16-byte sync marker; then blocks of records, each followed by the marker):
    ``(metadata, sync marker, cursor at the first block)``. Both LTP legacy segmenters read
    model files through this and ``read_container_blocks``. Raises ``not_valid``'s ValueError.
    """
    if len(data) < 4 or data[:4] != _AVRO_MAGIC:
        raise not_valid(path, "wrong magic bytes at the start" if data else "empty file")
    cur = _Bytes(data, 4)
    meta = {}
    try:
        while True:
            count = cur.long()
            if count == 0:
                break
            if count < 0:
                count = -count
                cur.long()
            for _ in range(count):
                key = cur.take(cur.long(), "the header")
                meta[key.decode("utf-8", "replace")] = cur.take(cur.long(), "the header")
        sync = cur.take(16, "the header")
    except ValueError as e:
        raise not_valid(path, str(e)) from None
    return meta, sync, cur


def read_container_blocks(path: str, cur: _Bytes, sync: bytes,
                          inflate: bool) -> Iterator[Tuple[int, bytes]]:
    """The blocks after ``read_container_header``'s cursor, one at a time, to the end of the
    file: ``(record count, bytes)``, raw-deflate inflated when ``inflate`` (each block must then
    inflate completely). Checks sizes and sync markers; raises ``not_valid``'s ValueError."""
    n_blocks = 0
    try:
        while cur.pos < len(cur.buf):
            count = cur.long()
            size = cur.long()
            if count < 0 or size < 0:
                raise ValueError(f"block {n_blocks} has a negative size")
            block = cur.take(size, f"block {n_blocks}")
            if cur.take(16, f"block {n_blocks}'s sync marker") != sync:
                raise ValueError(f"block {n_blocks} has a wrong sync marker")
            if inflate:
                d = zlib.decompressobj(-15)
                try:
                    block = d.decompress(block) + d.flush()
                except zlib.error as e:
                    raise ValueError(f"block {n_blocks} does not inflate: {e}") from None
                if not d.eof or d.unused_data:
                    raise ValueError(f"block {n_blocks} does not inflate completely")
            yield count, block
            n_blocks += 1
    except ValueError as e:
        raise not_valid(path, str(e)) from None


def container_schema(path: str, meta: dict, missing: bytes = b""):
    """The record schema in ``read_container_header``'s metadata (``missing``: the JSON taken
    when there is none); a model of another LTP task (POS, NER) is refused by name."""
    try:
        schema = json.loads(meta.get("avro.schema", missing))
    except ValueError:
        raise not_valid(path, "no readable schema in the header") from None
    name = schema.get("name") if isinstance(schema, dict) else None
    if name in ("pos", "ner"):
        raise ValueError(f"LTP model file {path!r} is a {name.upper()} model, not a word "
                         f"segmentation (cws) model")
    return schema


def check_model_file(path: str) -> dict:
    """Check the framing of an LTP legacy model (an Avro object container) without loading it.

    Verifies the magic, the header, every block's size and sync marker up to the end of the
    file, and (deflate codec) that each block inflates completely. Returns the codec, the
    schema (``avro.schema`` parsed) and the number of blocks. Raises ValueError naming the file
    and the problem: ltp-extension itself aborts the process on a truncated file.
    """
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise ValueError(f"cannot read LTP model file {path!r}: {e}") from None
    meta, sync, cur = read_container_header(path, buf)
    codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
    n_blocks = sum(1 for _ in read_container_blocks(path, cur, sync, codec == "deflate"))
    if n_blocks == 0:
        raise not_valid(path, "no data block (truncated file?)")
    schema = container_schema(path, meta, b"{}")  # ltp-extension knows the schemas it reads
    return {"codec": codec, "schema": schema, "blocks": n_blocks}


class LTPLegacySegmenter(Segmenter):
    """LTP legacy word segmentation (averaged perceptron in Rust, ``ltp-extension``): the
    ``ltp-rust:PATH`` segmenter (``ltp:PATH`` is the native ``LTPNativeSegmenter``, same words).

    Parameters
    ----------
    path : str
        A CWS model file (``cws_model.bin`` of ``LTP/legacy``, or one trained with
        ``wwm-fast train-segmenter``), or a folder in LTP's hub layout.
    num_threads : int, default 1
        1: the calling thread. >1 or -1: LTP's Rust thread pool (rayon), sized at the first
        parallel call in the process from RAYON_NUM_THREADS, which this sets when unset.
    fingerprint : str, optional
        12 hex digits of the model's sha256 (from a recorded spec): a model file whose content
        changed is refused.
    """

    kind = "ltp-rust"

    def __init__(self, path: str, num_threads: int = 1, fingerprint: Optional[str] = None):
        model_file = resolve_legacy_model(path)
        _import_ltp_extension()
        try:
            full_digest = sha256_file(model_file)
        except OSError as e:
            raise ValueError(f"cannot read LTP model file {model_file!r}: {e}") from None
        digest = full_digest[:12]
        if not os.path.exists(_marker_path(full_digest)):
            check_model_file(model_file)  # skipped for a model that already loaded once
        if fingerprint is not None and fingerprint != digest:
            raise ValueError(
                f"LTP model file {model_file!r} has changed since it was recorded "
                f"(sha256 {digest}..., expected {fingerprint}...): re-segment with the new model")
        super().__init__(f"{self.kind}:{model_file}#{digest}", num_threads)
        self.model_file = model_file
        _probe_load(model_file, full_digest)
        self._model = None  # loaded on first use (a second or so for a full-size model)
        self._parallel = self.num_threads != 1

    def load(self):
        """Load the model now (it is otherwise loaded by the first ``segment_batch``)."""
        if self._model is None:
            CWSModel = _import_ltp_extension()
            try:
                self._model = CWSModel.load(self.model_file)
            except BaseException as e:  # pyo3's PanicException derives from BaseException
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                raise ValueError(f"ltp-extension cannot load the model file "
                                 f"{self.model_file!r}: {_first_line(e)}") from None
            if self._parallel:
                _configure_rayon(self.num_threads)
        return self._model

    def _segment(self, lines: List[str]) -> Sequence[Sequence[str]]:
        return self.load().batch_predict(lines, parallelism=self._parallel)

    def close(self) -> None:
        self._model = None


_PROBE = """\
import sys
from ltp_extension.perceptron import CWSModel
CWSModel.load(sys.argv[1])
"""


def _marker_path(full_digest: str) -> str:
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"wwm_fast-{uid}-verified-models",
                        "ltp-legacy-" + full_digest)


def _probe_load(model_file: str, full_digest: str) -> None:
    """Load the model once in a child process before loading it here.

    A model file can pass ``check_model_file`` and still be corrupt (deflate has no checksum):
    ltp-extension then panics while decoding and aborts the whole process. A child process
    takes that hit instead; a model that loaded once is remembered (by content hash) in a
    per-user folder under the temp dir, so each model is probed once per machine.
    """
    import subprocess
    import sys

    marker = _marker_path(full_digest)
    marker_dir = os.path.dirname(marker)
    if os.path.exists(marker):
        return
    env = dict(os.environ, RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, model_file], capture_output=True,
                           env=env, timeout=3600)
    except (OSError, subprocess.SubprocessError) as e:  # cannot probe: load directly
        del e
        return
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = next((line for line in err if "Err" in line or "rror" in line),
                      err[-1] if err else f"exit status {r.returncode}")
        raise ValueError(f"LTP model file {model_file!r} is corrupt: ltp-extension cannot load "
                         f"it ({reason.strip()}); re-download or re-train it")
    try:
        os.makedirs(marker_dir, exist_ok=True)
        with open(marker, "w") as f:
            f.write(model_file + "\n")
    except OSError:
        pass


def _configure_rayon(num_threads: int) -> None:
    global _rayon_threads
    if _rayon_threads is not None:
        return
    if num_threads > 0 and "RAYON_NUM_THREADS" not in os.environ:
        os.environ["RAYON_NUM_THREADS"] = str(num_threads)
    _rayon_threads = num_threads


class LTPNeuralSegmenter(Segmenter):
    """Neural LTP word segmentation (``ltp`` package, torch), e.g. ``LTP/tiny``.

    ``name`` is a local model folder or a hub name that is already in the local Hugging Face
    cache (wwm-fast never downloads; ``ltp`` does when the machine can). Lines are segmented in
    batches of ``batch_size``; lines longer than ``max_chars`` are cut into pieces first (the
    model's encoder has 512 positions).
    """

    kind = "ltp-neural"

    def __init__(self, name: str, num_threads: int = 1, fingerprint: Optional[str] = None,
                 batch_size: int = 32, max_chars: int = 500, device: Optional[str] = None):
        try:
            import ltp  # noqa: F401
        except ImportError:
            raise ValueError(
                "segmenter 'ltp-neural' needs the packages ltp and torch, which are not "
                "installed: pip install 'wwm-fast[ltp-neural]'") from None
        local = os.path.isdir(abspath(name))
        if local:
            name = abspath(name)
            digest = _folder_digest(name)
            if fingerprint is not None and fingerprint != digest:
                raise ValueError(f"neural LTP model folder {name!r} has changed since it was "
                                 f"recorded (fingerprint {digest}, expected {fingerprint})")
            spec = f"ltp-neural:{name}#{digest}"
        else:
            spec = f"ltp-neural:{name}"
        super().__init__(spec, num_threads)
        self.batch_size = int(batch_size)
        self.max_chars = int(max_chars)
        try:
            from ltp import LTP

            self._model = LTP(name)
        except Exception as e:
            raise ValueError(f"cannot load the neural LTP model {name!r}: {_first_line(e)} "
                             f"(wwm-fast never downloads models: give a local folder or a "
                             f"name already in the Hugging Face cache)") from None
        if self.num_threads > 0:
            try:
                import torch

                torch.set_num_threads(self.num_threads)
            except Exception:  # pragma: no cover - torch always comes with ltp
                pass
        if device is not None and hasattr(self._model, "to"):
            self._model.to(device)

    def _segment(self, lines: List[str]) -> Sequence[Sequence[str]]:
        # Send only non-blank text, in pieces of at most max_chars, in small batches.
        jobs = []  # (line index, text)
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            for a in range(0, len(line), self.max_chars):
                jobs.append((i, line[a:a + self.max_chars]))
        out: List[List[str]] = [[] for _ in lines]
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b:b + self.batch_size]
            result = self._model.pipeline([t for _, t in batch], tasks=["cws"])
            cws = result.cws if hasattr(result, "cws") else result[0]
            for (i, _), words in zip(batch, cws):
                out[i].extend(words)
        return out

    def close(self) -> None:
        self._model = None


def _folder_digest(folder: str) -> str:
    """Fingerprint of a model folder: sha256 over its files' names and contents."""
    import hashlib

    h = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, folder).encode("utf-8") + b"\0")
            h.update(sha256_file(full).encode("ascii"))
    return h.hexdigest()[:12]
