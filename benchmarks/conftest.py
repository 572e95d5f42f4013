"""Shared fixtures for the benchmark suite: the real corpora, loaded once.

Run:  pytest benchmarks/bench_tokenizer.py --benchmark-columns=min,median,rounds
zh_all = People's Daily 1998 + reviews (../shared/data), 13.04 MB, 4,336,084 Google tokens.
"""

from __future__ import annotations

import gzip
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
