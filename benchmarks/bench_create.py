"""create on zh_all, dupe 5, seq 128: Google's create_pretraining_data.py vs wwm-fast, same flags.

    pytest benchmarks/bench_create.py --benchmark-columns=min,median,rounds -s

Every variant runs as its own process: wall time includes start-up (and TensorFlow's import for
Google's script); peak RSS is wait4()'s, for a process forked by a small launcher (_LAUNCHER).
Google's script (PyPI bert-tensorflow 1.0.4) predates --do_whole_word_mask, so its row is the
plain run; our WWM rows read a jieba segmentation cache made beforehand (as the issue asks).
Every round writes into an empty folder. Ratios against Google's run of the same session are
put in extra_info and printed.

Before vs after a change: ``WWM_FAST_BASELINE=<another checkout, built in place>`` adds
``test_against_baseline``, which runs each of our rows from that checkout and from this one in
alternating rounds (both see the same machine load) and reports wall and CPU seconds (the
command's own and its workers', from wait4) and the ratios, best vs best and median of pairs:

    git worktree add /tmp/base <commit> && (cd /tmp/base && python setup.py build_ext --inplace)
    WWM_FAST_BASELINE=/tmp/base pytest benchmarks/bench_create.py -k baseline -s
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("pytest_benchmark")

RESULTS = {}
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--masked_lm_prob=0.15", "--short_seq_prob=0.1", "--random_seed=12345"]


# Runs argv[2:] from a small fresh interpreter and writes "wall_s maxrss_kb status cpu_s" to
# argv[1] (cpu_s: user + system time of the command and the children it waited for).
# Linux carries a process's peak RSS across exec, and a child spawned by this (large) pytest
# process starts with pytest's own RSS (jieba's dictionary alone is ~100 MB), so the command is
# forked from this ~10 MB launcher instead, where it starts from nothing.
_LAUNCHER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} "
            f"{usage.ru_utime + usage.ru_stime}")
"""


def _measure(cmd, env=None, cwd=None):
    """Wall seconds, peak RSS (MB) and CPU seconds of a command (and its waited-for children);
    ``cwd``: run it from there (``python -m wwm_fast`` then imports that checkout's package)."""
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as result:
        # the log is a file, not a pipe: Google's script logs a lot
        subprocess.run([sys.executable, "-c", _LAUNCHER, result.name, *cmd],
                       stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=cwd, check=False)
        wall, rss_kb, code, cpu = result.read().split()
        if int(code) != 0:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"{cmd[:4]} failed ({code}):\n{err[-3000:]}")
    return float(wall), int(rss_kb) / 1024, float(cpu)


def _run(cmd, env=None):
    """Wall seconds and peak RSS (MB) of a command (and its waited-for children)."""
    return _measure(cmd, env)[:2]


def _fresh(folder):
    """An empty output folder. Deleting the last round's files is not timed: on this machine's
    ext4 (mounted with online discard) freeing 190 MB of old output takes about 0.2 s, a cost of
    the previous run that Google's single round into a fresh folder never pays."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)


def _bench(benchmark, name, cmd, rounds, env=None):
    """Rounds of ``cmd`` (each writes into a fresh OUT folder: the tmp_path of the test)."""
    walls, rss = [], []
    out_dir = _out_dir(cmd)

    def once():
        w, r = _run(cmd, env)
        walls.append(w)
        rss.append(r)

    benchmark.pedantic(once, setup=lambda: _fresh(out_dir), rounds=rounds, warmup_rounds=0)
    RESULTS[name] = (min(walls), max(rss))
    info = {"wall_s_best": round(min(walls), 3), "peak_rss_mb": round(max(rss), 1)}
    if "google" in RESULTS and name != "google" and "x4" not in name:  # same input only
        info["speedup_vs_google"] = round(RESULTS["google"][0] / min(walls), 1)
    benchmark.extra_info.update(info)
    print(f"\n{name}: {info}", file=sys.stderr)


N_SHARDS = 16
COPIES = 4


@pytest.fixture(scope="module")
def zh_shards(zh_all_dir, tmp_path_factory):
    """zh_all x4 (52 MB) split at document boundaries into 16 shards of about equal size: worker
    scaling needs more work than process start-up (zh_all alone takes about a second)."""
    folder = tmp_path_factory.mktemp("zh16")
    text = b"".join((zh_all_dir / n).read_bytes() for n in sorted(os.listdir(zh_all_dir)))
    docs = text.split(b"\n\n") * COPIES
    target = len(text) * COPIES / N_SHARDS
    shards, cur, size = [], [], 0
    for d in docs:
        cur.append(d)
        size += len(d) + 2
        if size >= target and len(shards) < N_SHARDS - 1:
            shards.append(b"\n\n".join(cur) + b"\n")
            cur, size = [], 0
    shards.append(b"\n\n".join(cur) + b"\n")
    paths = []
    for i, s in enumerate(shards):
        p = folder / f"zh-{i}.txt"
        p.write_bytes(s)
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def zh_inputs(zh_all_dir):
    return ",".join(str(zh_all_dir / n) for n in ("people_daily_199801.txt", "reviews.txt"))


@pytest.fixture(scope="module")
def zh_caches(zh_inputs, tmp_path_factory):
    """A jieba segmentation cache of zh_all, made once (not timed)."""
    pytest.importorskip("jieba")
    from wwm_fast.segmentation import segment_files

    out = tmp_path_factory.mktemp("seg")
    report = segment_files(zh_inputs, "jieba", str(out), num_workers=2, progress=False)
    return ",".join(report.outputs)


def _out_dir(cmd):
    for arg in cmd:
        if arg.startswith("--output_file="):
            return os.path.dirname(arg[len("--output_file="):])
    return os.path.dirname(cmd[cmd.index("--output_file") + 1])


def _ours(inputs, out, *extra):
    return [sys.executable, "-m", "wwm_fast", "create", "--input_file", inputs,
            "--output_file", str(out), "--noprogress", "--overwrite", *FLAGS, *extra]


class TestCreate:
    def test_google(self, benchmark, vocab_file, zh_inputs, tmp_path):
        pytest.importorskip("bert")
        cmd = [sys.executable, "-m", "bert.create_pretraining_data", f"--input_file={zh_inputs}",
               f"--output_file={tmp_path / 'google.tfrecord'}", f"--vocab_file={vocab_file}",
               "--do_lower_case=True", *FLAGS]
        _bench(benchmark, "google", cmd, rounds=1)

    # name: (input, extra flags, rounds); every row is one worker; WWM rows read the jieba cache
    OURS = {
        "fast": ("text", ["--num_threads=1"], 5),
        "fast_2threads": ("text", ["--num_threads=2"], 5),
        "fast_wwm": ("cache", ["--num_threads=1", "--do_whole_word_mask"], 5),
        "fast_wwm_2threads": ("cache", ["--num_threads=2", "--do_whole_word_mask"], 5),
        "compat": ("text", ["--mode=compat", "--num_threads=1"], 3),
        "compat_wwm": ("cache", ["--mode=compat", "--num_threads=1", "--do_whole_word_mask"], 3),
    }

    @pytest.mark.parametrize("name", list(OURS))
    def test_ours(self, benchmark, request, vocab_file, tmp_path, name):
        source, extra, rounds = self.OURS[name]
        inputs = request.getfixturevalue("zh_inputs" if source == "text" else "zh_caches")
        cmd = _ours(inputs, tmp_path / f"{name}.tfrecord", f"--vocab_file={vocab_file}",
                    "--num_workers=1", *extra)
        _bench(benchmark, name, cmd, rounds=rounds)

    def test_fast_16_shards_scaling(self, benchmark, vocab_file, zh_shards, tmp_path):
        """1 and 2 workers alternate round by round (the machine is shared: both see the same
        load); the benchmark times a pair; extra_info has both and the scaling, best vs best and
        the median over the pairs."""
        import statistics

        walls = {1: [], 2: []}

        def pair():
            for workers in (1, 2):
                cmd = _ours(",".join(zh_shards), tmp_path / "out" / "s.tfrecord",
                            f"--vocab_file={vocab_file}", f"--num_workers={workers}",
                            "--num_threads=1")
                _fresh(tmp_path / "out")
                walls[workers].append(_run(cmd)[0])

        benchmark.pedantic(pair, rounds=6, warmup_rounds=0)
        info = {f"{w}_workers_s_best": round(min(v), 3) for w, v in walls.items()}
        info.update({f"{w}_workers_s_median": round(statistics.median(v), 3)
                     for w, v in walls.items()})
        info["scaling_best"] = round(min(walls[1]) / min(walls[2]), 2)
        info["scaling_median_of_pairs"] = round(statistics.median(
            a / b for a, b in zip(walls[1], walls[2])), 2)
        benchmark.extra_info.update(info)
        print(f"\nzh_all x{COPIES} in {N_SHARDS} shards, 1 vs 2 workers: {info}", file=sys.stderr)


BASELINE = os.environ.get("WWM_FAST_BASELINE")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not BASELINE, reason="set WWM_FAST_BASELINE=<another checkout, built in place>")
@pytest.mark.parametrize("name", list(TestCreate.OURS) + ["fast_16_shards_2_workers"])
def test_against_baseline(benchmark, request, vocab_file, tmp_path, name):
    """Our row ``name`` from WWM_FAST_BASELINE and from this checkout, alternating round by round
    (which goes first alternates too); extra_info has wall and CPU seconds and the ratios."""
    import statistics

    if name == "fast_16_shards_2_workers":
        inputs = ",".join(request.getfixturevalue("zh_shards"))
        extra, rounds = ["--num_workers=2", "--num_threads=1"], 5
    else:
        source, extra, rounds = TestCreate.OURS[name]
        inputs = request.getfixturevalue("zh_inputs" if source == "text" else "zh_caches")
        extra = ["--num_workers=1", *extra]
    cmd = _ours(inputs, tmp_path / "out" / "t.tfrecord", f"--vocab_file={vocab_file}", *extra)
    runs = {"baseline": [], "this": []}
    turn = [0]

    def pair():
        order = ("baseline", "this") if turn[0] % 2 == 0 else ("this", "baseline")
        turn[0] += 1
        for which in order:
            _fresh(tmp_path / "out")
            wall, _, cpu = _measure(cmd, cwd=BASELINE if which == "baseline" else REPO)
            runs[which].append((wall, cpu))

    benchmark.pedantic(pair, rounds=rounds, warmup_rounds=0)
    info = {}
    for k, label in ((0, "wall"), (1, "cpu")):
        base = [r[k] for r in runs["baseline"]]
        this = [r[k] for r in runs["this"]]
        info[f"{label}_s_best_baseline"] = round(min(base), 3)
        info[f"{label}_s_best_this"] = round(min(this), 3)
        info[f"{label}_this_vs_baseline_best"] = round(min(this) / min(base), 3)
        info[f"{label}_this_vs_baseline_median_of_pairs"] = round(
            statistics.median(t / b for t, b in zip(this, base)), 3)
    benchmark.extra_info.update(info)
    print(f"\n{name} vs baseline: {info}", file=sys.stderr)
