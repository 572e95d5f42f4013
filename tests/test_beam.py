"""create_instances(runner="beam"): the Beam pipeline writes the local pool's bytes, survives a
failed or repeated bundle without lost or duplicated records, reports bad input by file and line,
and stages remote paths through FileSystems.

The pipelines run on Beam's local FnApiRunner: two worker processes (multi_processing) where the
point is crossing processes, one in-process worker (in_memory) where it is not, to keep the default
run short (each multi-process pipeline pays ~3-5 s of worker start-up on a 2-core machine).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("apache_beam",
                    reason="apache_beam is not installed (pip install 'wwm-fast[beam]')")

from apache_beam.io.filesystem import FileMetadata, MatchResult  # noqa: E402
from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402

import wwm_fast  # noqa: E402
from wwm_fast import beam as wbeam  # noqa: E402
from wwm_fast.stats import STATS_SUFFIX  # noqa: E402
from wwm_fast.tfrecord import read_records  # noqa: E402

TESTS = Path(__file__).resolve().parent
TWO_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
IN_PROCESS = ["--direct_num_workers=1"]
FAIL_ENV = "WWM_FAST_TEST_BEAM_FAIL_ONCE"  # "<shard index>:<marker file>", read by _FailOnce


# -- helpers ---------------------------------------------------------------------------------------


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _temporaries(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _stats_fields(s):
    d = s.to_json()
    for k in ("seconds", "skipped", "output_file", "fingerprint"):
        d.pop(k)
    return d


def _create(inputs, out, runner, beam_options=None, **kw):
    kw.setdefault("dupe_factor", 2)
    return wwm_fast.create_instances(inputs, kw.pop("vocab_file"), str(out), runner=runner,
                                     beam_options=beam_options, progress=False, **kw)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, people_daily_lines, reviews_lines):
    """All of ../shared/data (People's Daily + reviews, 13 MB) as 6 text shards."""
    folder = tmp_path_factory.mktemp("beam_shards")
    lines = people_daily_lines + reviews_lines
    n = 6
    k = -(-len(lines) // n)
    paths = []
    for i in range(n):
        p = folder / f"part-{i}.txt"
        p.write_text("\n".join(lines[i * k:(i + 1) * k]) + "\n", encoding="utf-8")
        paths.append(str(p))
    return paths


class _Ref:
    """The pool's first ``n`` shards (indexes 0..n-1: the same bytes as a run over n shards)."""

    def __init__(self, stats, n):
        self.output_files, self.shards = stats.output_files[:n], stats.shards[:n]


@pytest.fixture(scope="module")
def pool(shards, vocab_file, tmp_path_factory):
    """The local pool's outputs (2 workers): the reference bytes."""
    out = tmp_path_factory.mktemp("pool") / "t.tfrecord"
    stats = _create(shards, out, "local", vocab_file=vocab_file, num_workers=2)
    return stats


# -- bytes -----------------------------------------------------------------------------------------


def test_beam_two_processes_writes_the_pool_bytes(shards, pool, vocab_file, tmp_path):
    out = tmp_path / "beam" / "t.tfrecord"
    stats = _create(shards, out, "beam", TWO_PROCESSES, vocab_file=vocab_file, num_workers=2)
    assert [Path(f).name for f in stats.output_files] == [
        f"t-{i:05d}-of-00006.tfrecord" for i in range(6)]  # input order
    assert [_sha(f) for f in stats.output_files] == [_sha(f) for f in pool.output_files]
    assert [_stats_fields(s) for s in stats.shards] == [_stats_fields(s) for s in pool.shards]
    assert stats.instances > 40_000 and not any(s.skipped for s in stats.shards)
    assert sum(1 for _ in read_records(stats.output_files[0])) == stats.shards[0].instances
    for f in stats.output_files:
        assert os.path.exists(f + STATS_SUFFIX)
    assert _temporaries(out.parent) == []


def test_beam_resumes_what_the_pool_completed(shards, pool, vocab_file):
    """Same fingerprints as the pool: a Beam rerun over the pool's outputs redoes nothing."""
    before = [_sha(f) for f in pool.output_files]
    again = _create(shards, Path(pool.output_files[0]).parent / "t.tfrecord", "beam", IN_PROCESS,
                    vocab_file=vocab_file)
    assert all(s.skipped for s in again.shards)
    assert [s.instances for s in again.shards] == [s.instances for s in pool.shards]
    assert [_sha(f) for f in again.output_files] == before


# -- retries and failures --------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True], ids=["resume", "overwrite"])
def test_repeated_bundle_same_bytes_no_duplicates(shards, pool, vocab_file, tmp_path, overwrite):
    """--direct_runner_bundle_repeat=1: the local runner executes every bundle twice and keeps the
    second attempt's output only -- what a runner does when it retries a bundle whose first attempt
    finished but whose result was lost. resume: the second attempt finds the shard complete (which
    shows the bundle did run twice) and reports it skipped; overwrite: it rewrites every shard.
    Either way: one final file per shard with the pool's bytes, each shard's stats returned once,
    every record once, no temporaries."""
    out = tmp_path / "t.tfrecord"
    workers = TWO_PROCESSES if overwrite else IN_PROCESS  # (one multi-process run is enough)
    stats = _create(shards[:4], out, "beam", workers + ["--direct_runner_bundle_repeat=1"],
                    vocab_file=vocab_file, num_workers=2, overwrite=overwrite)
    ref = _Ref(pool, 4)
    assert [s.skipped for s in stats.shards] == [not overwrite] * 4
    assert [_stats_fields(s) for s in stats.shards] == [_stats_fields(s) for s in ref.shards]
    assert [_sha(f) for f in stats.output_files] == [_sha(f) for f in ref.output_files]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        [f"t-{i:05d}-of-00004.tfrecord" for i in range(4)]
        + [f"t-{i:05d}-of-00004.tfrecord{STATS_SUFFIX}" for i in range(4)])
    assert [sum(1 for _ in read_records(f)) for f in stats.output_files] == [
        s.instances for s in ref.shards]
    assert _temporaries(tmp_path) == []


class _FailOnce(wbeam._ShardFn):
    """The first attempt at shard FAIL_ENV's index raises after writing its first chunk of records.

    Runs in the worker processes (they import this module: the test puts tests/ on PYTHONPATH);
    the marker file makes "first" hold across processes and pipeline runs.
    """

    def run_shard(self, index, path, output):
        spec = os.environ.get(FAIL_ENV, "")
        target, _, marker = spec.partition(":")
        if spec and index == int(target):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # not the first attempt
            else:
                return self._fail_half_way(index, path, output)
        return super().run_shard(index, path, output)

    def _fail_half_way(self, index, path, output):
        from wwm_fast import shard

        real = shard.write_records

        def half_then_fail(dest, chunks, **kw):
            def first_chunk_then_fail():  # chunks are views of one reused buffer: stay lazy
                it = iter(chunks)
                yield next(it)
                raise RuntimeError(f"injected worker failure on shard {index}")
            return real(dest, first_chunk_then_fail(), **kw)

        shard.write_records = half_then_fail
        try:
            return super().run_shard(index, path, output)
        finally:
            shard.write_records = real


def test_failed_attempt_then_rerun_no_lost_or_duplicated_records(shards, pool, vocab_file,
                                                                 tmp_path, monkeypatch):
    """Beam's local runner (FnApiRunner, 2.77) does not retry a failed bundle: the pipeline fails.
    So this shows the equivalent of a retry: shard 1's first attempt raises after writing its
    first 4 MB of records (to atomic_output's temporary); the pipeline fails and leaves nothing of
    shard 1 under a final name; a stale temporary as a SIGKILLed worker would leave is planted; the
    rerun (a retry that only redoes unfinished shards) completes with the pool's bytes, every record
    once, and no temporaries."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(TESTS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv(FAIL_ENV, f"1:{tmp_path / 'failed-once'}")
    monkeypatch.setattr(wbeam, "run_beam_pipeline",
                        functools.partial(wbeam._run_beam, shard_fn=_FailOnce))
    inputs = shards[:4]
    out = tmp_path / "out" / "t.tfrecord"
    # the local runner raises RuntimeError carrying the worker's traceback
    with pytest.raises(RuntimeError, match="injected worker failure on shard 1"):
        _create(inputs, out, "beam", TWO_PROCESSES, vocab_file=vocab_file, num_workers=2)
    assert (tmp_path / "failed-once").exists()
    assert not (out.parent / "t-00001-of-00004.tfrecord").exists()
    assert not (out.parent / f"t-00001-of-00004.tfrecord{STATS_SUFFIX}").exists()
    assert _temporaries(out.parent) == []
    stale = out.parent / ".t-00001-of-00004.tfrecord.k1ll3d.tmp-wwm"
    stale.write_bytes(b"half a shard")
    rerun = _create(inputs, out, "beam", IN_PROCESS, vocab_file=vocab_file)
    ref = _Ref(pool, 4)
    assert not rerun.shards[1].skipped
    assert [_sha(f) for f in rerun.output_files] == [_sha(f) for f in ref.output_files]
    assert [sum(1 for _ in read_records(f)) for f in rerun.output_files] == [
        s.instances for s in ref.shards]
    assert _temporaries(out.parent) == []


def test_bad_input_names_file_and_line_and_leaves_no_output(shards, vocab_file, tmp_path):
    """Invalid UTF-8 (errors='strict') in shard 1: ValueError with the file and line, as the local
    pool raises it; nothing of shard 1 under a final name; the good shard is still finished (bad
    input is deterministic, so it is reported rather than retried)."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes("第一句。\n第二句。\n".encode() + b"\xe4\xb8 broken\n" + "第四句。\n".encode())
    out = tmp_path / "out" / "x.tfrecord"
    with pytest.raises(ValueError, match=r"bad\.txt: line 3: invalid UTF-8"):
        _create([shards[5], str(bad)], out, "beam", TWO_PROCESSES, vocab_file=vocab_file,
                num_workers=2)
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["x-00000-of-00002.tfrecord", f"x-00000-of-00002.tfrecord{STATS_SUFFIX}"]
    ok = _create([shards[5], str(bad)], out, "beam", IN_PROCESS, vocab_file=vocab_file,
                 errors="ignore")
    assert ok.shards[1].instances >= 1


# -- remote paths ----------------------------------------------------------------------------------


class _SchemeFileSystem(LocalFileSystem):
    """``wwmtest:///abs/path`` -> ``/abs/path``: a Beam file system with a scheme, on local disk,
    to run the staging code (copy in, run locally, copy out under a temporary name + rename) that
    gs:// and s3:// paths take. Registered by being defined (Beam finds FileSystem subclasses)."""

    PREFIX = "wwmtest://"

    @classmethod
    def scheme(cls):
        return "wwmtest"

    def __init__(self, pipeline_options=None):
        super().__init__(pipeline_options)
        self._local = LocalFileSystem(pipeline_options)  # does the work on translated paths

    def _p(self, path):
        assert path.startswith(self.PREFIX), path
        return path[len(self.PREFIX):]

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        return self._local.mkdirs(self._p(path))

    def match(self, patterns, limits=None):
        results = self._local.match([self._p(p) for p in patterns], limits)
        return [MatchResult(p, [FileMetadata(self.PREFIX + m.path, m.size_in_bytes,
                                             m.last_updated_in_seconds)
                                for m in r.metadata_list])
                for p, r in zip(patterns, results)]

    def create(self, path, *args, **kwargs):
        return self._local.create(self._p(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return self._local.open(self._p(path), *args, **kwargs)

    def copy(self, sources, destinations):
        return self._local.copy([self._p(p) for p in sources], [self._p(p) for p in destinations])

    def rename(self, sources, destinations):
        return self._local.rename([self._p(p) for p in sources],
                                  [self._p(p) for p in destinations])

    def exists(self, path):
        return self._local.exists(self._p(path))

    def size(self, path):
        return self._local.size(self._p(path))

    def last_updated(self, path):
        return self._local.last_updated(self._p(path))

    def checksum(self, path):
        return self._local.checksum(self._p(path))

    def metadata(self, path):
        m = self._local.metadata(self._p(path))
        return FileMetadata(path, m.size_in_bytes, m.last_updated_in_seconds)

    def delete(self, paths):
        return self._local.delete([self._p(p) for p in paths])


def test_remote_paths_are_staged_and_resumed(shards, pool, vocab_file, tmp_path):
    """Inputs and outputs with a scheme go through FileSystems: same bytes as the pool, stats
    naming the remote paths, no temporaries at the destination, resume by the remote stats."""
    from wwm_fast.shard import ShardJob

    remote_in = tmp_path / "bucket" / "in"
    remote_in.mkdir(parents=True)
    for p in shards[:2]:
        shutil.copy(p, remote_in / Path(p).name)
    inputs = [f"wwmtest://{remote_in / Path(p).name}" for p in shards[:2]]
    outputs = [f"wwmtest://{tmp_path / 'bucket' / 'out' / f'o-{i}.tfrecord'}" for i in range(2)]
    cfg = ShardJob(os.path.abspath(vocab_file), True, 128, 20, 0.15, 0.1, 2, 12345, False, None,
                  "fast", True, False, "strict", 1)
    stats = wbeam.run_beam_pipeline(inputs, outputs, cfg, num_workers=1, overwrite=False,
                                    beam_options=IN_PROCESS)
    local_out = [o[len("wwmtest://"):] for o in outputs]
    assert [_sha(f) for f in local_out] == [_sha(f) for f in pool.output_files[:2]]
    assert [s.input_files for s in stats] == [[p] for p in inputs]
    assert [s.output_file for s in stats] == outputs
    assert [s.instances for s in stats] == [s.instances for s in pool.shards[:2]]
    saved = Path(local_out[0] + STATS_SUFFIX).read_text(encoding="utf-8")
    assert inputs[0] in saved and "/tmp/wwm-fast-shard-" not in saved
    assert _temporaries(tmp_path / "bucket" / "out") == []
    again = wbeam.run_beam_pipeline(inputs, outputs, cfg, num_workers=1, overwrite=False,
                                    beam_options=IN_PROCESS)
    assert [s.skipped for s in again] == [True, True]
    assert [s.instances for s in again] == [s.instances for s in stats]
    os.utime(remote_in / Path(shards[1]).name, ns=(1, 1))  # the input changed: shard 1 is redone
    third = wbeam.run_beam_pipeline(inputs, outputs, cfg, num_workers=1, overwrite=False,
                                    beam_options=IN_PROCESS)
    assert [s.skipped for s in third] == [True, False]
    assert [_sha(f) for f in local_out] == [_sha(f) for f in pool.output_files[:2]]
    with pytest.raises(ValueError, match="input file not found: 'wwmtest://"):
        wbeam.run_beam_pipeline([inputs[0] + ".missing"], outputs[:1], cfg, num_workers=1,
                                overwrite=False, beam_options=IN_PROCESS)


def test_expand_remote_globs(shards, tmp_path):
    """Google's --input_file syntax over FileSystems: comma-separated globs, each sorted."""
    for i in (2, 0, 1):
        (tmp_path / f"p-{i}.txt").write_text("好\n", encoding="utf-8")
    remote = f"wwmtest://{tmp_path}/p-*.txt"
    assert wbeam.expand_input_files(f"{shards[1]},{remote}") == [shards[1]] + [
        f"wwmtest://{tmp_path}/p-{i}.txt" for i in range(3)]
    with pytest.raises(ValueError, match="matches no file"):
        wbeam.expand_input_files(f"wwmtest://{tmp_path}/none-*.txt")
    with pytest.raises(ValueError, match="matches no file"):
        wbeam.expand_input_files(str(tmp_path / "none-*.txt"))


def test_worker_without_the_vocab_file_gets_a_copy(vocab_file, tmp_path):
    from wwm_fast.shard import ShardJob

    data = Path(vocab_file).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cfg = ShardJob(str(tmp_path / "not-on-this-worker.txt"), True, 128, 20, 0.15, 0.1, 1, 1,
                  False, None, "fast", True, False, "strict", 1)
    local = wbeam._worker_job(cfg, data, sha)
    assert local.vocab_file != cfg.vocab_file and Path(local.vocab_file).read_bytes() == data
    same = wbeam._worker_job(cfg.__class__(**{**cfg.__dict__, "vocab_file": vocab_file}),
                                data, sha)
    assert same.vocab_file == vocab_file  # the caller's file is there: fingerprints unchanged


# -- options and entry points ----------------------------------------------------------------------


@pytest.mark.parametrize("given,workers,expect_runner,expect_direct", [
    # 0: nothing given -> the local FnApiRunner, one process per worker
    ([], 2, "FnApiRunner", {"direct_num_workers": 2, "direct_running_mode": "multi_processing"}),
    # 1: one worker -> in process
    ([], 1, "FnApiRunner", {"direct_num_workers": 1, "direct_running_mode": "in_memory"}),
    # 2: the user's direct options win
    (["--direct_num_workers=1"], 2, "FnApiRunner",
     {"direct_num_workers": 1, "direct_running_mode": "in_memory"}),
    # 3: DirectRunner kept as given, workers added
    (["--runner=DirectRunner"], 2, "DirectRunner",
     {"direct_num_workers": 2, "direct_running_mode": "multi_processing"}),
    # 4: a remote runner: no local options added
    (["--runner", "DataflowRunner", "--project=p"], 2, "DataflowRunner",
     {"direct_num_workers": 1, "direct_running_mode": "in_memory"}),
])
def test_pipeline_options(given, workers, expect_runner, expect_direct):
    options, local = wbeam._pipeline_options(given, workers)
    all_options = options.get_all_options()
    assert all_options["runner"] == expect_runner
    assert local == (expect_runner != "DataflowRunner")
    for k, v in expect_direct.items():
        assert all_options[k] == v, k


def test_bad_arguments(shards, vocab_file, tmp_path):
    with pytest.raises(ValueError, match=r"num_workers must be in \[1, 256\], got 0"):
        _create(shards[:1], tmp_path / "x.tfrecord", "beam", vocab_file=vocab_file,
                num_workers=0)
    with pytest.raises(ValueError, match="batch pipeline; drop --streaming"):
        _create(shards[:1], tmp_path / "x.tfrecord", "beam", ["--streaming"],
                vocab_file=vocab_file)
    with pytest.raises(ValueError, match="runner='beam' runs fast mode"):
        _create(shards[:1], tmp_path / "x.tfrecord", "beam", vocab_file=vocab_file,
                mode="compat")
    assert not list(tmp_path.iterdir())


def test_cli_runner_beam(shards, pool, vocab_file, tmp_path, capsys):
    from wwm_fast.cli import main

    out = tmp_path / "cli" / "t.tfrecord"
    assert main(["create", "--input_file", ",".join(shards[:2]), "--vocab_file", vocab_file,
                 "--output_file", str(out), "--dupe_factor=2", "--noprogress",
                 "--runner", "beam", "--beam_runner", "FnApiRunner", "--",
                 "--direct_num_workers=1"]) == 0
    assert "wrote" in capsys.readouterr().err
    assert _sha(out.parent / "t-00001-of-00002.tfrecord") == _sha(pool.output_files[1])
