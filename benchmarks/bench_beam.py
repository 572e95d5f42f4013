"""`create` on Beam's local runner vs the local process pool: same shards, same flags, 2 workers.

    pytest benchmarks/bench_beam.py --benchmark-columns=min,median,rounds -s

Workloads (fast mode, dupe_factor 5, max_seq_length 128, Google's other defaults):

* ``zh_all``: People's Daily 1998 + reviews (13.04 MB) as 8 text shards of ~1.6 MB.
* ``zh_all_x16``: the same text 16 times over (209 MB) as 16 shards of 13 MB.
* ``zh_all_x48``: 48 times over (626 MB) as 48 shards of 13 MB (9 GB of TFRecords per runner) --
  a size where Beam's fixed start-up (about 3 s for two SDK harness processes) stops mattering.

Pool: ``create_instances(runner="local", num_workers=2)``. Beam: ``runner="beam"`` with no Beam
option, i.e. ``FnApiRunner --direct_num_workers=2 --direct_running_mode=multi_processing``. Each
round redoes every shard (``overwrite=True``) and includes starting the workers (pool: 2 spawned
processes; Beam: 2 SDK harness processes), so Beam's fixed cost per pipeline shows; ``import
apache_beam`` in the caller happens once, before timing. The rounds alternate pool, Beam, pool,
Beam... so that both see the same load (the machine is shared); the benchmark table times Beam, its
extra_info has the pool's rounds, MB/s and the overhead (best vs best, and the median over the
pairs). Beam's files are checked byte for byte against the pool's. The last test prints a summary.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import time
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("apache_beam", reason="apache_beam is not installed (pip install "
                                          "'wwm-fast[beam]')")

import wwm_fast  # noqa: E402
import wwm_fast.beam  # noqa: E402,F401  (imports apache_beam before any timing)

# name: (copies of zh_all, shards)
WORKLOADS = {"zh_all": (1, 8), "zh_all_x16": (16, 16), "zh_all_x48": (48, 48)}
ROUNDS = {"zh_all": 5, "zh_all_x16": 3, "zh_all_x48": 2}  # pairs of rounds (pool, then Beam)
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


def test_pool_vs_beam(benchmark, workload, vocab_file, tmp_path):
    """Timed rounds of Beam, each right after a round of the pool on the same shards (pedantic's
    setup, timed here), so that both runners see the same load on a shared machine."""
    name, paths, n_bytes = workload
    pool_times, pool_stats = [], []

    def run(runner):
        return wwm_fast.create_instances(paths, vocab_file, str(tmp_path / runner / "t.tfrecord"),
                                         runner=runner, **FLAGS)

    def pool_round():
        t0 = time.perf_counter()
        pool_stats[:] = [run("local")]
        pool_times.append(time.perf_counter() - t0)

    stats = benchmark.pedantic(run, args=("beam",), setup=pool_round, rounds=ROUNDS[name],
                               warmup_rounds=0)
    pool = pool_stats[0]
    assert stats.instances == pool.instances > 200_000 * WORKLOADS[name][0]
    assert _digests(stats.output_files) == _digests(pool.output_files), "Beam's bytes differ"
    shutil.rmtree(tmp_path, ignore_errors=True)
    beam_times = benchmark.stats.stats.data  # in round order, paired with pool_times
    paired = [b / p - 1 for b, p in zip(beam_times, pool_times)]
    best_pool, best_beam = min(pool_times), min(beam_times)
    RESULTS[name] = dict(pool=best_pool, beam=best_beam, paired=statistics.median(paired),
                         instances=stats.instances, mb=n_bytes / 1e6)
    benchmark.extra_info.update(
        workers=2, shards=len(paths), input_mb=round(n_bytes / 1e6, 2), instances=stats.instances,
        beam_mb_per_s_best=round(n_bytes / best_beam / 1e6, 2),
        pool_mb_per_s_best=round(n_bytes / best_pool / 1e6, 2),
        pool_seconds=[round(t, 3) for t in pool_times],
        overhead_best=round(best_beam / best_pool - 1, 3),
        overhead_paired_median=round(statistics.median(paired), 3))


def test_summary():
    if not RESULTS:
        pytest.skip("run the whole file to compare the runners")
    rows = [f"  {name:<10} {r['mb']:6.1f} MB   pool {r['pool']:6.2f} s   beam {r['beam']:6.2f} s   "
            f"overhead {100 * (r['beam'] / r['pool'] - 1):+6.1f}% (best rounds, "
            f"+{r['beam'] - r['pool']:.2f} s), {100 * r['paired']:+6.1f}% (median of pairs)"
            for name, r in RESULTS.items()]
    print("\nBeam local runner (FnApiRunner, 2 processes) vs local pool (2 processes), "
          "same bytes:\n" + "\n".join(rows))
