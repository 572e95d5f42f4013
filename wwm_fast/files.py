"""File handling shared by every stage: input globs, reading, and atomic output.

Owns how every command finds, reads and writes files. It must not know any stage's format
(text lines are decoded here, tokens and records are not).

Conventions (the same in every command):

* ``--input_file`` takes Google's syntax: a comma-separated list of globs, each expanded in sorted
  order, files processed in that order. A glob that matches nothing is an error.
* Inputs ending in ``.gz`` are decompressed on the fly; everything else is read as bytes.
* Outputs are written under a temporary name in the destination folder and renamed when complete
  (``atomic_output``), so a crash or Ctrl-C never leaves a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import tempfile
from typing import Iterator, List

__all__ = ["expand_input_files", "read_bytes", "decode_lines", "atomic_output", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp-wwm"


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
    left untouched. The temporary file lives in the same folder, so the rename is atomic.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create output folder {folder!r}: {e}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=TMP_SUFFIX,
                                   dir=folder)
    except OSError as e:
        raise ValueError(f"cannot write output file {path!r}: {e}") from None
    try:
        text = {} if "b" in mode else {"encoding": "utf-8"}  # never the locale's encoding
        with os.fdopen(fd, mode, **text) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
                f"(near {line[max(0, e.start - 12):e.end + 12]!r}); pass errors='ignore' to drop "
                f"invalid bytes as Google's convert_to_unicode does") from None
    return lines
