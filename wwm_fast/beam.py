"""``create`` (fast mode) as an Apache Beam pipeline: one element per input shard.

    Create[(index, input, output)] -> GroupByKey(index) -> _ShardFn (= shard.run_shard)
        -> ToList -> one JSON results file -> ShardStats in input order (read by the caller)

The Beam runner: it owns the pipeline, its options, staging of remote paths and collecting the
results. It must not make a shard itself, and imports only the shard and stats modules of the
create stage (plus files), so that the bytes and the resume rule are the local pool's.

The DoFn runs the same per-shard function as the local process pool, so the bytes are the same:
fast mode keys its RNG by the shard index, not by the worker. Every output is written under a
temporary name and renamed when complete, so a bundle that a runner retries (after a failure, or
after a success whose result was lost) writes the same bytes again and never leaves a duplicate or a
half-written shard under a final name.

Where the work happens:

* Native objects (the WordPiece tables, a segmenter) are built in ``DoFn.setup()``, once per worker
  process, never pickled: the DoFn carries only the picklable ``ShardJob`` and the vocab's bytes
  (a worker of a remote runner does not have the caller's vocab path).
* Local paths are handed to ``run_shard`` as they are (so resume works across the local pool and
  Beam). A path with a scheme (``gs://``, ``s3://``, ...) is staged: the input is copied to a local
  temporary folder with ``apache_beam.io.filesystems.FileSystems``, the shard is made there, and
  the output and its stats JSON are copied to the destination under temporary names and renamed;
  the resume check is ``shard.load_complete`` over Beam's ``FileSystems`` (``_BeamStorage``).
* Bad input (``ValueError`` from the shard: invalid UTF-8 in strict mode, a cache made with another
  segmenter, an unreadable file) is deterministic, so it is not retried: the shard reports its
  error, the other shards finish, and ``run_beam_pipeline`` raises one ``ValueError`` naming every
  bad shard (file and line). Any other exception fails the bundle, which the runner retries
  (Dataflow retries a batch bundle 4 times; Beam's local runner does not retry).

The local runner is pinned to ``FnApiRunner`` (``DirectRunner`` in Beam 2.77 first tries the Prism
runner, which downloads a binary) with ``--direct_num_workers=N --direct_running_mode=
multi_processing``. See BEAM.md beside this file for Dataflow, Flink and Spark.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from typing import Dict, List, Optional, Sequence

try:
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
except ImportError as _e:  # pragma: no cover - depends on the install
    raise ImportError(f"runner='beam' needs Apache Beam: pip install 'wwm-fast[beam]' "
                      f"({_e})") from None

from .files import TMP_SUFFIX
from .files import expand_input_files as _expand_local
from .shard import (ShardJob, Storage, fingerprint, load_complete, prepare_worker,
                    remove_stale_temporaries, resolve_num_workers, run_shard)
from .stats import STATS_SUFFIX, ShardStats, stats_json

__all__ = ["run_beam_pipeline", "expand_input_files"]

_LOG = logging.getLogger(__name__)
_LOCAL_RUNNERS = ("fnapirunner", "directrunner", "switchingdirectrunner",
                  "bundlebaseddirectrunner")
_COPY_BUFFER = 16 << 20
_RAW = CompressionTypes.UNCOMPRESSED  # copy bytes as they are (.gz inputs stay compressed)


def run_beam_pipeline(inputs: Sequence[str], outputs: Sequence[str], job: ShardJob, *,
                      num_workers: Optional[int] = None, overwrite: bool = False,
                      beam_options: Sequence[str] = ()) -> List[ShardStats]:
    """Run ``run_shard`` over the shards as a Beam pipeline; the ``ShardStats`` in input order.

    Parameters
    ----------
    inputs, outputs : list of str
        One output per input (fast mode). Local paths, or any scheme Beam's ``FileSystems`` knows
        (``gs://`` needs ``apache-beam[gcp]``, ``s3://`` ``apache-beam[aws]``).
    job : shard.ShardJob
        The flags, as ``create_instances`` validated them.
    num_workers : int, optional
        Worker processes of the local runner (default: cores, at most the number of shards).
        Remote runners size themselves (``--num_workers``, ``--max_num_workers`` on Dataflow).
    overwrite : bool
        Redo shards that an earlier run (local pool or Beam) completed.
    beam_options : list of str
        Beam pipeline options. Without ``--runner`` the local ``FnApiRunner`` runs with
        ``num_workers`` processes.

    Raises ValueError naming the file and line when a shard's input is bad (the other shards are
    still written); a worker failure that the runner gives up on propagates as the runner raises it.
    """
    return _run_beam(inputs, outputs, job, num_workers=num_workers, overwrite=overwrite,
                     beam_options=beam_options, shard_fn=_ShardFn)


def _run_beam(inputs, outputs, job: ShardJob, *, num_workers, overwrite, beam_options,
              shard_fn) -> List[ShardStats]:
    """``run_beam_pipeline`` with the DoFn class ``shard_fn`` (tests pass a subclass)."""
    inputs, outputs = [str(p) for p in inputs], [str(p) for p in outputs]
    if len(inputs) != len(outputs) or not inputs:
        raise ValueError(f"one output per input shard: got {len(inputs)} input(s), "
                         f"{len(outputs)} output(s)")
    options, local = _pipeline_options(beam_options, resolve_num_workers(num_workers, len(inputs)))
    remove_stale_temporaries([o for o in outputs if not _has_scheme(o)])
    with open(job.vocab_file, "rb") as f:
        vocab = f.read()
    results = _results_path(outputs[0])
    elements = [(i, p, o) for i, (p, o) in enumerate(zip(inputs, outputs))]
    try:
        with _importable_by_workers(local):
            with beam.Pipeline(options=options) as p:
                _ = (p
                     | "Shards" >> beam.Create(elements, reshuffle=False)
                     # one key per shard: a fusion break that spreads the shards over the workers
                     # (the local runner deals the keys round-robin, Dataflow balances them)
                     | "KeyByIndex" >> beam.Map(lambda e: (e[0], e))
                     | "Spread" >> beam.GroupByKey()
                     | "Ungroup" >> beam.FlatMap(lambda kv: kv[1])
                     | "RunShard" >> beam.ParDo(shard_fn(job, overwrite, vocab))
                     | "Collect" >> beam.combiners.ToList()
                     | "WriteResults" >> beam.Map(_write_results, results))
        return _read_results(results, inputs)
    finally:
        with contextlib.suppress(Exception):
            if FileSystems.exists(results):
                FileSystems.delete([results])


def expand_input_files(spec) -> List[str]:
    """``files.expand_input_files`` that also expands globs with a scheme (``gs://b/seg/*``)
    through Beam's ``FileSystems``: comma-separated globs (or a list), each sorted, in order.

    Raises ValueError naming the pattern when one matches no file.
    """
    patterns = spec if isinstance(spec, (list, tuple)) else os.fspath(spec).split(",")
    patterns = [os.fspath(p).strip() for p in patterns if os.fspath(p).strip()]
    if not patterns:
        raise ValueError(f"input_file is empty: {spec!r}")
    files: List[str] = []
    for pattern in patterns:
        if not _has_scheme(pattern):
            files.extend(_expand_local([pattern]))
            continue
        try:
            found = FileSystems.match([pattern])[0].metadata_list
        except Exception as e:  # BeamIOError for no match on some file systems
            raise ValueError(f"input_file pattern {pattern!r} matches no file ({e})") from None
        if not found:
            raise ValueError(f"input_file pattern {pattern!r} matches no file")
        files.extend(sorted(m.path for m in found))
    return files


# -- the DoFn --------------------------------------------------------------------------------------


class _ShardFn(beam.DoFn):
    """One input shard -> one output shard + stats JSON; yields ``{"index", "stats"|"error"}``."""

    def __init__(self, job: ShardJob, overwrite: bool, vocab: bytes):
        super().__init__()
        self._job = job
        self._overwrite = bool(overwrite)
        self._vocab = vocab
        self._vocab_sha = hashlib.sha256(vocab).hexdigest()
        self._bad_shards = beam.metrics.Metrics.counter("wwm_fast", "bad_input_shards")
        self._worker_job: Optional[ShardJob] = None

    def setup(self):
        self._worker_job = _worker_job(self._job, self._vocab, self._vocab_sha)
        prepare_worker(self._worker_job)  # the vocab tables and segmenter, once per process

    def process(self, element):
        index, path, output = element
        try:
            stats = self.run_shard(index, path, output)
        except ValueError as e:  # bad input: the same on every attempt, so report, do not retry
            self._bad_shards.inc()
            _LOG.error("shard %d (%s): %s", index, path, e)
            yield {"index": index, "error": str(e)}
            return
        yield {"index": index, "stats": stats.to_json()}

    def run_shard(self, index: int, path: str, output: str) -> ShardStats:
        if _has_scheme(path) or _has_scheme(output):
            return _run_staged(index, path, output, self._worker_job, self._overwrite,
                               self._vocab_sha)
        return run_shard(index, path, output, self._worker_job, self._overwrite)


def _worker_job(job: ShardJob, vocab: bytes, vocab_sha: str) -> ShardJob:
    """``job`` if this machine has the caller's vocab file, else ``job`` with a local copy of it."""
    with contextlib.suppress(OSError):
        with open(job.vocab_file, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == vocab_sha:
                return job
    path = os.path.join(tempfile.gettempdir(), f"wwm-fast-vocab-{vocab_sha[:16]}.txt")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(prefix=".wwm-fast-vocab.", suffix=TMP_SUFFIX,
                                   dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as f:
            f.write(vocab)
        os.replace(tmp, path)
    return dataclasses.replace(job, vocab_file=path)


# -- remote paths: stage through a local folder ----------------------------------------------------


def _has_scheme(path: str) -> bool:
    return FileSystems.get_scheme(path) is not None


class _BeamStorage(Storage):
    """Remote paths through Beam's ``FileSystems``, for the one resume check in shard.py.

    The identity of a remote input is its path, size and modification time as the file system
    reports them, and the vocab's content hash (the worker's vocab file may be a copy)."""

    missing = (Exception,)  # FileSystems raises BeamIOError and others for a missing file

    def __init__(self, vocab_sha: str):
        self.vocab_sha = vocab_sha

    def identity(self, job: ShardJob, path: str, output: str) -> dict:
        meta = FileSystems.get_filesystem(path).metadata(path)
        return dict(vocab_file=None, vocab_sha=self.vocab_sha, input=path,
                    size=meta.size_in_bytes, mtime=meta.last_updated_in_seconds, output=output)

    def read_text(self, path: str) -> str:
        with FileSystems.open(path, compression_type=_RAW) as f:
            return f.read().decode("utf-8")

    def size(self, path: str) -> int:
        return FileSystems.get_filesystem(path).size(path)


def _run_staged(index: int, path: str, output: str, job: ShardJob, overwrite: bool,
                vocab_sha: str) -> ShardStats:
    """``run_shard`` on a local copy of ``path``; the output and stats copied to ``output``."""
    if not FileSystems.exists(path):
        raise ValueError(f"input file not found: {path!r}")
    storage = _BeamStorage(vocab_sha)
    fp = fingerprint(job, index, storage.identity(job, path, output))
    if not overwrite:
        done = load_complete(output, fp, storage)
        if done is not None:
            return done
    with tempfile.TemporaryDirectory(prefix="wwm-fast-shard-") as tmp:
        # keep the input's name: read_bytes decompresses by the .gz suffix
        local_in = os.path.join(tmp, "in", FileSystems.split(path)[1])
        local_out = os.path.join(tmp, "out", FileSystems.split(output)[1])
        os.makedirs(os.path.dirname(local_in))
        with FileSystems.open(path, compression_type=_RAW) as src, open(local_in, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)
        stats = run_shard(index, local_in, local_out, job, True)
        stats.input_files, stats.output_file, stats.fingerprint = [path], output, fp
        _put(local_out, output)
        _put_bytes(stats_json(stats).encode(), output + STATS_SUFFIX)  # last: marks it complete
    return stats


def _temp_name(dest: str) -> str:
    folder, name = FileSystems.split(dest)
    return FileSystems.join(folder, f".{name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def _put(local: str, dest: str):
    """Copy a local file to ``dest`` (any scheme) under a temporary name, then rename it."""
    with open(local, "rb") as src:
        _put_stream(src, dest)


def _put_bytes(data: bytes, dest: str):
    import io
    _put_stream(io.BytesIO(data), dest)


def _put_stream(src, dest: str):
    tmp = _temp_name(dest)
    try:
        with FileSystems.create(tmp, compression_type=_RAW) as dst:
            shutil.copyfileobj(src, dst, _COPY_BUFFER)
        FileSystems.rename([tmp], [dest])
    except BaseException:
        with contextlib.suppress(Exception):
            FileSystems.delete([tmp])
        raise


# -- results back to the caller --------------------------------------------------------------------


def _results_path(first_output: str) -> str:
    # beside the outputs (workers can write there, the caller can read there); the name is one a
    # later local run removes as a stale temporary should this caller die before deleting it
    folder, name = FileSystems.split(first_output)
    return FileSystems.join(folder or ".",
                            f".{name}.beam-results-{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def _write_results(results, path):  # (no annotations: Beam would log about them)
    _put_bytes(json.dumps(sorted(results, key=lambda r: r["index"])).encode(), path)


def _read_results(path: str, inputs: List[str]) -> List[ShardStats]:
    with FileSystems.open(path, compression_type=_RAW) as f:
        results = json.loads(f.read().decode("utf-8"))
    by_index: Dict[int, Dict] = {}
    for r in results:  # a runner never commits a bundle twice; be safe anyway
        by_index.setdefault(r["index"], r)
    missing = [inputs[i] for i in range(len(inputs)) if i not in by_index]
    if missing:
        raise RuntimeError(f"the Beam pipeline returned no result for {len(missing)} shard(s): "
                           f"{missing[:3]}")
    errors = [by_index[i]["error"] for i in range(len(inputs)) if "error" in by_index[i]]
    if errors:
        more = (f" (and {len(errors) - 1} more bad shard(s): {'; '.join(errors[1:4])})"
                if len(errors) > 1 else "")
        raise ValueError(errors[0] + more)
    return [ShardStats.from_json(by_index[i]["stats"]) for i in range(len(inputs))]


# -- options ---------------------------------------------------------------------------------------


def _pipeline_options(beam_options: Sequence[str], num_workers: int):
    """Beam options; without --runner, the local FnApiRunner with ``num_workers`` processes.

    Returns (options, local): ``local`` when the runner runs on this machine.
    """
    args = [str(a) for a in beam_options]
    given = PipelineOptions(args).get_all_options()
    runner = given.get("runner") if _given(args, "runner") else None
    if runner is None:
        args.insert(0, "--runner=FnApiRunner")
        runner = "FnApiRunner"
    name = runner if isinstance(runner, str) else type(runner).__name__
    local = name.lower().rsplit(".", 1)[-1] in _LOCAL_RUNNERS
    if local:
        workers = num_workers
        if _given(args, "direct_num_workers"):
            workers = int(given["direct_num_workers"])
        else:
            args.append(f"--direct_num_workers={num_workers}")
        if not _given(args, "direct_running_mode"):
            args.append("--direct_running_mode="
                        + ("multi_processing" if workers != 1 else "in_memory"))
    options = PipelineOptions(args)
    if options.view_as(StandardOptions).streaming:
        raise ValueError("runner='beam' is a batch pipeline; drop --streaming")
    return options, local


def _given(args: List[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


@contextlib.contextmanager
def _importable_by_workers(local: bool):
    """Let the local runner's worker processes import this wwm_fast (from a source checkout too)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    old = os.environ.get("PYTHONPATH")
    paths = old.split(os.pathsep) if old else []
    if not local or root in paths:
        yield
        return
    os.environ["PYTHONPATH"] = os.pathsep.join([root] + paths)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
