"""The user's whole job on zh_all: raw text -> ``wwm-fast segment`` (LTP legacy) -> ``wwm-fast
create --do_whole_word_mask`` (dupe 5, seq 128), with the native LTP kernel (``ltp:``) against
the same job with ``ltp_extension`` (``ltp-rust:``), both in one run.

    pytest benchmarks/bench_e2e.py -s          # WWM_E2E_ROUNDS=N for more than 3 rounds

Each round runs both jobs, which one goes first alternating (both see the same machine load);
each stage is its own process (wall time includes start-up), measured by bench_create's launcher
(wall, peak RSS and CPU seconds from wait4). The model is bench_segment's: LTP legacy trained by
``train-segmenter``'s function on 90% of People's Daily's gold (10 epochs), or
WWM_FAST_LTP_MODEL. Both jobs must write the same records (the native kernel gives
ltp_extension's words), which the benchmark checks. Every stage uses one worker process and the
commands' default threads. extra_info has every round's seconds, the best of each job, and the
ratios (best vs best, worst and median of the per-round ratios).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys

import pytest

from bench_create import FLAGS, _fresh, _measure
from bench_segment import ltp_model_file  # noqa: F401  (the fixture)

pytest.importorskip("pytest_benchmark")

ROUNDS = int(os.environ.get("WWM_E2E_ROUNDS", "3"))
JOBS = {"native": "ltp", "ltp_extension": "ltp-rust"}


def _digest(folder) -> str:
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tfrecord"):
            with open(os.path.join(folder, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_e2e_segment_then_create(benchmark, ltp_model_file, zh_all_dir,  # noqa: F811
                                 vocab_file, tmp_path):
    inputs = ",".join(str(zh_all_dir / n) for n in ("people_daily_199801.txt", "reviews.txt"))
    seg_dir, out_dir = tmp_path / "seg", tmp_path / "out"
    wwm = [sys.executable, "-m", "wwm_fast"]
    runs = {name: [] for name in JOBS}
    digests = {}
    turn = [0]

    def job(name):
        _fresh(seg_dir)
        _fresh(out_dir)
        seg = _measure([*wwm, "segment", "--input_file", inputs, "--output_dir", str(seg_dir),
                        "--segmenter", f"{JOBS[name]}:{ltp_model_file}", "--num_workers=1",
                        "--progress=false"])
        create = _measure([*wwm, "create", "--input_file", str(seg_dir / "*.wwmseg"),
                           "--output_file", str(out_dir / "e2e.tfrecord"),
                           f"--vocab_file={vocab_file}", "--noprogress", "--num_workers=1",
                           "--do_whole_word_mask", *FLAGS])
        runs[name].append({"segment_wall_s": seg[0], "create_wall_s": create[0],
                           "wall_s": seg[0] + create[0], "cpu_s": seg[2] + create[2],
                           "peak_rss_mb": max(seg[1], create[1])})
        digests.setdefault(name, set()).add(_digest(out_dir))

    def round_():
        names = list(JOBS) if turn[0] % 2 == 0 else list(JOBS)[::-1]
        turn[0] += 1
        for name in names:
            job(name)

    benchmark.pedantic(round_, rounds=ROUNDS, warmup_rounds=0)
    assert len(digests["native"]) == 1 and digests["native"] == digests["ltp_extension"], \
        "the two jobs wrote different records"
    info = {"rounds": ROUNDS}
    for name, rows in runs.items():
        for key in ("wall_s", "cpu_s", "segment_wall_s", "create_wall_s"):
            info[f"{name}_{key}"] = [round(r[key], 3) for r in rows]
        info[f"{name}_peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in rows), 1)
    for key in ("wall_s", "cpu_s"):
        ratios = [b[key] / a[key] for a, b in zip(runs["native"], runs["ltp_extension"])]
        info[f"{key}_ratio_best_vs_best"] = round(
            min(r[key] for r in runs["ltp_extension"]) / min(r[key] for r in runs["native"]), 2)
        info[f"{key}_ratio_worst_round"] = round(min(ratios), 2)
        info[f"{key}_ratio_median_round"] = round(statistics.median(ratios), 2)
    benchmark.extra_info.update(info)
    print(f"\nend to end (segment + create, zh_all): {info}", file=sys.stderr)
