"""File handling shared by every stage: input globs, reading, and atomic output.

Owns how every command finds, reads and writes files. It must not know any stage's format
(text lines are decoded here, tokens and records are not).

Conventions (the same in every command):

* ``--input_file`` takes Google's syntax: a comma-separated list of globs, each expanded in sorted
  order, files processed in that order. A glob that matches nothing is an error.
* Inputs ending in ``.gz`` are decompressed on the fly; everything else is read as bytes.
* Outputs are written under a temporary name in the destination folder and renamed when complete
  (``atomic_output``, or ``atomic_path`` for writers that take a file name), so a crash or Ctrl-C
  never leaves a half-written file under a final name. A folder that cannot be created or written
  and a full disk are a ValueError naming the output (the CLI's one-line error).
* Ctrl-C: no output is completed after the interrupt, even by work that cannot be stopped at once
  (a native kernel running in another thread). A worker process calls ``cancel_outputs()`` on
  SIGINT: none of its outputs is renamed into place any more. Work that runs in a helper thread
  of the calling process does so under a token (``outputs_cancelled_by``); setting the token
  (``cancel_outputs(token)``, on KeyboardInterrupt) cancels that thread's outputs only, so the
  next run in the same process (a notebook after Ctrl-C) writes as usual.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import gzip
import os
import tempfile
import threading
import zlib
from typing import Iterator, List, Optional

__all__ = ["expand_input_files", "read_bytes", "decode_lines", "atomic_output", "atomic_path",
           "check_writable_folder", "cancel_outputs", "outputs_cancelled_by", "TMP_SUFFIX",
           "write_records"]

TMP_SUFFIX = ".tmp-wwm"

# errors of a write that mean "the disk refused", reported as a ValueError naming the output
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_cancelled = threading.Event()  # every output of this process (a worker after SIGINT)
_local = threading.local()  # .token: the Event that cancels this thread's outputs
_publish_lock = threading.Lock()  # a rename and a cancel never interleave


def expand_input_files(spec: str | os.PathLike | List) -> List[str]:
    """Google's ``--input_file``: comma-separated globs (or a list of them), each sorted.

    Raises ValueError naming the pattern when one matches no file.
    """
    if isinstance(spec, (list, tuple)):
        patterns = [os.fspath(p) for p in spec]
    else:
        patterns = [p for p in os.fspath(spec).split(",")]
    patterns = [p.strip() for p in patterns if p.strip()]
    if not patterns:
        raise ValueError(f"input_file is empty: {spec!r}")
    files: List[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
            [pattern] if os.path.exists(pattern) else [])
        if not matches:
            raise ValueError(f"input_file pattern {pattern!r} matches no file")
        for m in matches:
            if os.path.isdir(m):
                raise ValueError(f"input_file {m!r} is a directory; give files or a glob")
        files.extend(matches)
    return files


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole file as bytes; ``.gz`` files are decompressed."""
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ValueError(f"input file not found: {path!r}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read input file {path!r}: {e}") from None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open ``path`` for writing under a temporary name; rename into place on success.

    Text modes write UTF-8 whatever the locale.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left untouched. The temporary file lives in the same folder, so the rename is atomic. A
    folder that cannot be created or written, and a full disk, raise ValueError naming ``path``.
    """
    with atomic_path(path) as tmp:
        text = {} if "b" in mode else {"encoding": "utf-8"}  # never the locale's encoding
        with open(tmp, mode, **text) as f:
            yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """The name of a new empty temporary file beside ``path``, for a writer that takes a file
    name; renamed to ``path`` (permissions as for any new file, not mkstemp's 0600) when the block
    ends without an exception, removed otherwise. Errors as ``atomic_output``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create output folder {folder!r}: {e.strerror or e}") from None
    if _is_cancelled():
        raise KeyboardInterrupt
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX,
                                   dir=folder)
        os.close(fd)
    except OSError as e:
        raise ValueError(f"cannot write output file {path!r}: {e.strerror or e}") from None
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in _DISK_FULL and e.filename in (None, tmp):
            raise ValueError(f"cannot write output file {path!r}: {e.strerror} (nothing was kept "
                             f"under that name)") from None
        raise


def _is_cancelled() -> bool:
    token = getattr(_local, "token", None)
    return _cancelled.is_set() or (token is not None and token.is_set())


def _publish(tmp: str, path: str) -> None:
    with _publish_lock:
        if _is_cancelled():  # interrupted while this output was being made
            raise KeyboardInterrupt
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)


def check_writable_folder(folder: str | os.PathLike, what: str = "output folder") -> None:
    """Create ``folder`` if needed and check that a file can be created in it, before any work:
    ValueError naming ``what`` and the folder otherwise (a read-only file system, no
    permission). Leaves nothing behind."""
    folder = os.path.abspath(os.fspath(folder))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create output folder {folder!r} ({what}): "
                         f"{e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".wwm-fast-probe.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write output files in {folder!r} ({what}): "
                         f"{e.strerror or e}") from None


def cancel_outputs(token: Optional[threading.Event] = None) -> None:
    """No output is renamed into place from now on (a rename in progress finishes first); each
    ``atomic_output``/``atomic_path`` raises KeyboardInterrupt instead and removes its temporary
    file. Without ``token``: every output of this process, for good (a worker process on SIGINT);
    with it: the outputs of the threads working under ``outputs_cancelled_by(token)``."""
    with _publish_lock:
        (token if token is not None else _cancelled).set()


@contextlib.contextmanager
def outputs_cancelled_by(token: threading.Event) -> Iterator[None]:
    """The outputs this thread makes inside the block are cancelled once ``token`` is set (by
    ``cancel_outputs(token)``)."""
    previous = getattr(_local, "token", None)
    _local.token = token
    try:
        yield
    finally:
        _local.token = previous


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def decode_lines(data: bytes, errors: str = "strict", source: str = "<bytes>") -> List[str]:
    """The lines of a text file exactly as the tokenizer's file reader sees them.

    Split on ``\\n`` only (a final line without ``\\n`` counts; no empty line after a final
    ``\\n``), every ``\\r`` removed (TensorFlow GFile), UTF-8 decoded with ``errors``
    ("strict": ValueError naming ``source``, the line and the bytes; "ignore": invalid bytes
    dropped, as Google's ``convert_to_unicode`` does). Character offsets computed on these strings
    are the offsets ``FullTokenizer.encode_file`` reports.
    """
    if errors not in ("strict", "ignore"):
        raise ValueError(f"errors must be one of ['strict', 'ignore'], got {errors!r}")
    raw = data.replace(b"\r", b"").split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    if errors == "ignore":
        return [line.decode("utf-8", "ignore") for line in raw]
    lines = []
    for i, line in enumerate(raw):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            bad = line[e.start:e.end]
            raise ValueError(
                f"{source}: line {i + 1}: invalid UTF-8 {bad!r} at byte {e.start} of the line "
                f"(near {line[max(0, e.start - 12):e.end + 12]!r}); pass errors='ignore' (on the "
                f"command line: --errors ignore) to drop invalid bytes as Google's "
                f"convert_to_unicode does") from None
    return lines


def write_records(path: str | os.PathLike, chunks, *, gzip: bool = False) -> int:
    """Write framed record bytes (an iterable of bytes-like chunks) to ``path`` atomically.

    Returns the number of bytes written (after compression). With ``gzip`` the file is one GZIP
    stream (mtime 0, so deterministic), TensorFlow's ``compression_type="GZIP"``.
    """
    with atomic_output(path, "wb") as f:
        writer = _ChunkWriter(f, gzip)
        try:
            for chunk in chunks:
                writer.put(chunk)
        finally:
            written = writer.close()
    return written


class _ChunkWriter:
    """Writes (and compresses) chunks in a thread while the caller makes the next ones.

    file.write and zlib release the GIL, so serialization and I/O overlap. The queue holds one
    chunk: the caller can be at most two chunks ahead of the write, which is what
    ``serialize_instances``' three buffers allow. An error in the thread is raised in the caller.
    """

    def __init__(self, f, gzip: bool):
        import queue
        import threading

        self._f = f
        self._comp = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
        self._queue = queue.Queue(maxsize=1)
        self._error = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="wwm-fast-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is not None:
                continue  # drain after a failure
            try:
                data = self._comp.compress(chunk) if self._comp else chunk
                self._f.write(data)
                self.written += len(data)
            except BaseException as e:  # reported to the caller by put()/close()
                self._error = e

    def put(self, chunk):
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> int:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._comp:
            tail = self._comp.flush()
            self._f.write(tail)
            self.written += len(tail)
        return self.written
