"""Shared fixtures for the benchmark suite: the real corpora, loaded once.

Run:  pytest benchmarks/bench_tokenizer.py --benchmark-columns=min,median,rounds
zh_all = People's Daily 1998 + reviews (../shared/data), 13.04 MB, 4,336,084 Google tokens.
"""

from __future__ import annotations

import gzip
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VOCAB = SHARED_DATA / "bert-base-chinese-vocab.txt"
ZH_ALL_FILES = [SHARED_DATA / "people_daily_199801.txt.gz", SHARED_DATA / "reviews.txt.gz"]
ZH_ALL_TOKENS = 4_336_084


# Runs argv[2:] from a small fresh interpreter and writes "wall_s maxrss_kb status cpu_s" to
# argv[1] (cpu_s: user + system time of the command and the children it waited for).
# Linux carries a process's peak RSS across exec, and a child spawned by the (large) pytest
# process starts with pytest's own RSS (jieba's dictionary alone is ~100 MB; TensorFlow more), so
# the command is forked from this ~10 MB launcher instead, where it starts from nothing.
LAUNCHER = """
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


def launch(cmd, env=None, cwd=None):
    """Wall seconds, peak RSS (MB) and CPU seconds of a command (and its waited-for children),
    forked from LAUNCHER; ``cwd``: run it from there (``python -m wwm_fast`` then imports that
    checkout's package). RuntimeError with the end of its stderr if it fails."""
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as result:
        # the log is a file, not a pipe: Google's script logs a lot
        subprocess.run([sys.executable, "-c", LAUNCHER, result.name, *cmd],
                       stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=cwd, check=False)
        wall, rss_kb, code, cpu = result.read().split()
        if int(code) != 0:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"{cmd[:5]} failed ({code}):\n{err[-3000:]}")
    return float(wall), int(rss_kb) / 1024, float(cpu)


# Comparisons of variants that take turns (the order rotating), so machine-load drift hits all
# alike; ratios as best vs best and as the median of the rounds' ratios with a confidence interval.

def _rotate(run, sides, rounds, warmup=True):
    """``run(side)`` -> (wall s, CPU s) for every side in each of ``rounds`` timed rounds, after
    one untimed round that warms them all up alike (the page cache of the interpreter, the
    extensions and the input; the first process of a session otherwise pays it, on whichever
    side went first). The order rotates round by round (round i starts at side i mod k), so every
    side runs as often in every place and all see the same machine load. Returns side -> list
    of (wall, CPU), in round order."""
    if warmup:
        for side in sides:
            run(side)
    runs = {side: [] for side in sides}
    for i in range(rounds):
        k = i % len(sides)
        for side in sides[k:] + sides[:k]:
            runs[side].append(run(side))
    return runs


def _median_ci(values, level=0.95):
    """The median of ``values`` and a distribution-free confidence interval for it: the order
    statistics (k, n + 1 - k) for the largest k that still covers the median with probability
    >= ``level`` (1 - 2 P(Binomial(n, 1/2) < k); n = 21: the 6th and 16th, 0.973; n = 15: the 4th
    and 12th, 0.965). Assumes only that the values are independent draws of one distribution."""
    v = sorted(values)
    n = len(v)
    k, tail = 0, 0.0
    while k < n // 2 and 1 - 2 * (tail + math.comb(n, k) / 2 ** n) >= level:
        tail += math.comb(n, k) / 2 ** n
        k += 1
    k = max(k, 1)
    return statistics.median(v), v[k - 1], v[n - k]


def _ratio_stats(runs, base, other, label=None):
    """``other`` over ``base`` from _rotate's runs (the i-th runs of each side come from the same
    round): for wall and CPU, the best of each side, best vs best, and the median of the rounds'
    ratios with its ~95% confidence interval (_median_ci)."""
    info = {}
    label = label or f"{other}_vs_{base}"
    for k, kind in ((0, "wall"), (1, "cpu")):
        a = [r[k] for r in runs[base]]
        b = [r[k] for r in runs[other]]
        info[f"{kind}_s_best_{base}"] = round(min(a), 3)
        info[f"{kind}_s_best_{other}"] = round(min(b), 3)
        info[f"{kind}_{label}_best"] = round(min(b) / min(a), 3)
        med, lo, hi = _median_ci([y / x for y, x in zip(b, a)])
        info[f"{kind}_{label}_median_of_pairs"] = round(med, 3)
        info[f"{kind}_{label}_median_ci95"] = (round(lo, 3), round(hi, 3))
    return info


def _alternate(benchmark, run, first, second, rounds):
    """``run(side)`` -> (wall s, CPU s) for the two sides in ``rounds`` timed pairs (_rotate: an
    untimed warm-up pair first, which side goes first alternates). Returns wall and CPU seconds,
    best of each side, and ``second`` over ``first``: best vs best and the median of the pairs'
    ratios (with its confidence interval)."""
    runs = {}
    benchmark.pedantic(lambda: runs.update(_rotate(run, [first, second], rounds)), rounds=1,
                       warmup_rounds=0)
    info = _ratio_stats(runs, first, second)
    benchmark.extra_info.update(info)
    return info


def _need_data():
    if not VOCAB.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def vocab_file() -> str:
    _need_data()
    return str(VOCAB)


@pytest.fixture(scope="session")
def zh_all_bytes() -> bytes:
    """zh_all as one UTF-8 buffer (the two files concatenated)."""
    _need_data()
    return b"".join(gzip.open(p, "rb").read() for p in ZH_ALL_FILES)


@pytest.fixture(scope="session")
def zh_all_lines(zh_all_bytes):
    lines = zh_all_bytes.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


@pytest.fixture(scope="session")
def zh_all_dir(tmp_path_factory, zh_all_bytes):
    """zh_all as plain-text files on disk (what Google's script reads)."""
    _need_data()
    folder = tmp_path_factory.mktemp("zh_all")
    for p in ZH_ALL_FILES:
        (folder / p.name[:-3]).write_bytes(gzip.open(p, "rb").read())
    return folder
