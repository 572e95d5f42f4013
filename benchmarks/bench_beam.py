"""`create` on Beam's local runner vs the local process pool: same shards, same flags, 2 workers.

    pytest benchmarks/bench_beam.py --benchmark-columns=min,median,rounds -s

Workloads (fast mode, dupe_factor 5, max_seq_length 128, Google's other defaults):

* ``zh_all``: People's Daily 1998 + reviews (13.04 MB) as 8 text shards of ~1.6 MB.
* ``zh_all_x16``: the same text 16 times over (209 MB) as 16 shards of 13 MB -- 16x the work, a
  size where the runners' fixed start-up costs stop mattering.

``TestPool`` runs ``create_instances(runner="local", num_workers=2)``; ``TestBeam`` runs
``runner="beam"`` with no Beam option, i.e. ``FnApiRunner --direct_num_workers=2
--direct_running_mode=multi_processing``. Each round redoes every shard (``overwrite=True``) and
includes starting the workers (pool: 2 spawned processes; Beam: 2 SDK harness processes), so Beam's
fixed cost per pipeline shows; ``import apache_beam`` in the caller is done once, before timing.
Every Beam round's files are checked byte for byte against the pool's. The last test prints Beam's
overhead over the pool (best rounds) per workload; each result's extra_info has MB/s.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("apache_beam", reason="apache_beam is not installed (pip install "
                                          "'wwm-fast[beam]')")

import wwm_fast  # noqa: E402
import wwm_fast.beam  # noqa: E402,F401  (imports apache_beam before any timing)

WORKLOADS = {"zh_all": (1, 8), "zh_all_x16": (16, 16)}  # name: (copies of zh_all, shards)
ROUNDS = 3
FLAGS = dict(dupe_factor=5, max_seq_length=128, num_workers=2, overwrite=True, progress=False)
RESULTS: dict = {}


@pytest.fixture(scope="module", params=list(WORKLOADS))
def workload(request, tmp_path_factory, zh_all_bytes):
    """(name, shard paths, input bytes): zh_all repeated, split at line ends into equal shards."""
    name = request.param
    copies, n = WORKLOADS[name]
    lines = zh_all_bytes.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    lines = lines * copies
    k = -(-len(lines) // n)
    folder = tmp_path_factory.mktemp(name)
    paths = []
    for i in range(n):
        p = folder / f"part-{i:03d}.txt"
        p.write_bytes(b"\n".join(lines[i * k:(i + 1) * k]) + b"\n")
        paths.append(str(p))
    yield name, paths, sum(Path(p).stat().st_size for p in paths)
    shutil.rmtree(folder, ignore_errors=True)


def _digests(files):
    return [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files]


def _run(benchmark, workload, vocab_file, tmp_path, runner):
    name, paths, n_bytes = workload
    out = str(tmp_path / runner / "train.tfrecord")

    def run():
        return wwm_fast.create_instances(paths, vocab_file, out, runner=runner, **FLAGS)

    stats = benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=0)
    assert stats.instances > 200_000 * WORKLOADS[name][0] and not any(
        s.skipped for s in stats.shards)
    best = benchmark.stats.stats.min
    RESULTS[(name, runner)] = (best, _digests(stats.output_files), stats.instances)
    shutil.rmtree(tmp_path / runner, ignore_errors=True)
    benchmark.extra_info.update(runner=runner, workers=2, shards=len(paths), input_mb=n_bytes / 1e6,
                                instances=stats.instances,
                                mb_per_s_best=round(n_bytes / best / 1e6, 2),
                                mb_per_s_median=round(n_bytes / benchmark.stats.stats.median / 1e6,
                                                      2))
    return stats


class TestPool:
    def test_create_pool(self, benchmark, workload, vocab_file, tmp_path):
        """The local process pool (spawned processes, one shard at a time each)."""
        _run(benchmark, workload, vocab_file, tmp_path, "local")


class TestBeam:
    def test_create_beam(self, benchmark, workload, vocab_file, tmp_path):
        """Beam's local runner, 2 SDK worker processes; the pool's bytes."""
        _run(benchmark, workload, vocab_file, tmp_path, "beam")
        name = workload[0]
        pool = RESULTS.get((name, "local"))
        if pool is not None:
            beam = RESULTS[(name, "beam")]
            assert beam[1] == pool[1], "Beam's output differs from the pool's"
            benchmark.extra_info["overhead_vs_pool"] = round(beam[0] / pool[0] - 1, 3)


def test_summary():
    rows = []
    for name in WORKLOADS:
        pool, beam = RESULTS.get((name, "local")), RESULTS.get((name, "beam"))
        if pool and beam:
            rows.append(f"  {name:<10} pool {pool[0]:6.2f} s   beam {beam[0]:6.2f} s   "
                        f"overhead {100 * (beam[0] / pool[0] - 1):+5.1f}%   "
                        f"(+{beam[0] - pool[0]:.2f} s, {pool[2]:,} instances, same bytes)")
    if not rows:
        pytest.skip("run the whole file to compare the runners")
    print("\nBeam local runner vs local pool, 2 workers, best of %d rounds:\n%s"
          % (ROUNDS, "\n".join(rows)))
