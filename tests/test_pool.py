"""wwm_fast/pool.py: the one process pool (create's shards, segment's chunks).

What the callers rely on: every task's result comes back once with its tag, in submission order
when asked, with at most ``max_pending`` tasks drawn ahead; a task's exception reaches the caller;
the start method is fork on Linux unless the program chose one; and a fork is safe after LTP's
Rust thread pool ran in the parent (the reason segment_files used to spawn).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from wwm_fast.pool import run_tasks, start_method

from segmentation_helpers import gold_sentences, small_ltp_model

REPO = Path(__file__).resolve().parents[1]


def _square(x, fail_at=None):
    if x == fail_at:
        raise ValueError(f"task {x} failed")
    return x * x, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("ordered", [False, True])
def test_every_result_once_with_its_tag(workers, ordered):
    tasks = [(f"t{i}", (i,)) for i in range(20)]
    with run_tasks(_square, tasks, workers, ordered=ordered) as results:
        got = list(results)
    assert sorted((tag, r[0]) for tag, r in got) == sorted((f"t{i}", i * i) for i in range(20))
    if ordered or workers == 1:
        assert [tag for tag, _ in got] == [f"t{i}" for i in range(20)]
    pids = {r[1] for _, r in got}
    assert (pids == {os.getpid()}) == (workers == 1)


def test_at_most_max_pending_drawn_ahead():
    drawn = []

    def tasks():
        for i in range(12):
            drawn.append(i)
            yield i, (i,)

    with run_tasks(_square, tasks(), 2, max_pending=3, ordered=True) as results:
        for k, (tag, _) in enumerate(results):
            assert tag == k
            assert len(drawn) <= k + 1 + 3
    assert drawn == list(range(12))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_task_error_reaches_the_caller(workers):
    fn = functools.partial(_square, fail_at=3)
    with pytest.raises(ValueError, match="task 3 failed"):
        with run_tasks(fn, [(i, (i,)) for i in range(8)], workers, ordered=True) as results:
            for _ in results:
                pass


def test_leaving_early_stops_the_pool():
    with run_tasks(_square, [(i, (i,)) for i in range(50)], 2, max_pending=4) as results:
        first = next(results)
    assert first[1][0] == first[0] ** 2
    assert list(results) == []  # closed: nothing more comes


def _start_method_in(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code + "\nfrom wwm_fast.pool import start_method\n"
                        "print(start_method())"], capture_output=True, text=True, cwd=REPO,
                       timeout=120, check=True)
    return r.stdout.strip()


def test_start_method():
    if sys.platform.startswith("linux"):
        assert start_method() in ("fork", "spawn")  # pytest may have fixed one
        assert _start_method_in("") == "fork"
    # a program's own choice wins
    assert _start_method_in("import multiprocessing as m; m.set_start_method('spawn')") == "spawn"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is used on Linux only")
def test_fork_after_ltp_ran_its_thread_pool(tmp_path):
    """The parent segments with LTP's Rust pool (2 threads), then segment_files forks 2 workers
    that segment in parallel too: the run finishes (no deadlock) with the words of a 1-worker run.
    (ltp-extension notices the fork and segments on one thread in the children.)"""
    model = small_ltp_model()
    text = tmp_path / "in"
    text.mkdir()
    lines = ["".join(s.split()) for s in gold_sentences()[:3000]]
    for i in range(2):
        (text / f"p{i}.txt").write_text("\n".join(lines[i::2]) + "\n", encoding="utf-8")
    script = textwrap.dedent(f"""
        from wwm_fast.segmentation import get_segmenter, segment_files
        seg = get_segmenter("ltp:{model}", num_threads=2)
        seg.segment_batch({lines[:200]!r})  # the Rust pool runs in the parent
        segment_files("{text}/*.txt", "ltp:{model}", "{tmp_path}/forked", num_workers=2,
                      num_threads=2, progress=False, chunk_chars=20000)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    from wwm_fast.segmentation import read_cache, segment_files
    segment_files(f"{text}/*.txt", f"ltp:{model}", str(tmp_path / "one"), num_workers=1,
                  progress=False)
    for i in range(2):
        a = read_cache(tmp_path / "forked" / f"p{i}.txt.wwmseg").words
        b = read_cache(tmp_path / "one" / f"p{i}.txt.wwmseg").words
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
