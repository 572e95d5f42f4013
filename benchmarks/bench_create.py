"""create on zh_all, dupe 5, seq 128: Google's create_pretraining_data.py vs wwm-fast, same flags.

    pytest benchmarks/bench_create.py --benchmark-columns=min,median,rounds -s

Every variant runs as its own process: wall time includes start-up (and TensorFlow's import for
Google's script); peak RSS is wait4()'s, for a process forked by a small launcher (conftest.LAUNCHER).
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
import time

import pytest
from conftest import launch

pytest.importorskip("pytest_benchmark")

RESULTS = {}
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--masked_lm_prob=0.15", "--short_seq_prob=0.1", "--random_seed=12345"]


# Wall s, peak RSS MB and CPU s of a command (conftest.launch: forked from a small launcher)
_measure = launch


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


def _alternate(benchmark, run, first, second, rounds):
    """``run(side)`` -> (wall s, CPU s) for the two sides in ``rounds`` timed pairs, after one
    untimed pair that warms both up alike (the page cache of the interpreter, the extensions and
    the input; the first process of a session otherwise pays it, on whichever side went first).
    Which side goes first alternates pair by pair, so both see the same machine load. Returns
    wall and CPU seconds, best of each side, and ``second`` over ``first``: best vs best and the
    median of the pairs' ratios."""
    import statistics

    for side in (first, second):
        run(side)
    runs = {first: [], second: []}
    turn = [0]

    def pair():
        order = (first, second) if turn[0] % 2 == 0 else (second, first)
        turn[0] += 1
        for side in order:
            runs[side].append(run(side))

    benchmark.pedantic(pair, rounds=rounds, warmup_rounds=0)
    info = {}
    for k, label in ((0, "wall"), (1, "cpu")):
        a = [r[k] for r in runs[first]]
        b = [r[k] for r in runs[second]]
        info[f"{label}_s_best_{first}"] = round(min(a), 3)
        info[f"{label}_s_best_{second}"] = round(min(b), 3)
        info[f"{label}_{second}_vs_{first}_best"] = round(min(b) / min(a), 3)
        info[f"{label}_{second}_vs_{first}_median_of_pairs"] = round(
            statistics.median(y / x for y, x in zip(b, a)), 3)
    benchmark.extra_info.update(info)
    return info


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
        "fast_wwm_ngram": ("cache", ["--num_threads=1", "--do_whole_word_mask", "--ngram_masking"],
                           5),
        "fast_wwm_ngram_2threads": ("cache", ["--num_threads=2", "--do_whole_word_mask",
                                              "--ngram_masking"], 5),
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


class TestNgramOverhead:
    """Issue 15: n-gram masking costs <= 10% over whole-word masking in fast mode. The two
    commands alternate round by round (which goes first alternates too; one untimed warm-up
    pair first: _alternate), so both see the same machine load; extra_info has wall and CPU
    seconds, best vs best and the median of pairs (10 pairs)."""

    def test_create_ngram_vs_wwm(self, benchmark, vocab_file, zh_caches, tmp_path):
        def run(which):
            extra = ["--ngram_masking"] if which == "ngram" else []
            cmd = _ours(zh_caches, tmp_path / "out" / "t.tfrecord", f"--vocab_file={vocab_file}",
                        "--num_workers=1", "--num_threads=1", "--do_whole_word_mask", *extra)
            _fresh(tmp_path / "out")
            wall, _, cpu = _measure(cmd)
            return wall, cpu

        info = _alternate(benchmark, run, "wwm", "ngram", rounds=10)
        print(f"\nn-gram vs whole-word masking, create fast, 1 worker, 1 thread: {info}",
              file=sys.stderr)

    def test_create_ngram_vs_wwm_instructions(self, benchmark, vocab_file, zh_caches, tmp_path):
        """The same two commands once each under valgrind's cachegrind: instructions executed,
        which, unlike seconds, do not depend on the machine's load (the timed ratios above swing
        by +-40% on a shared 2-core machine). Both runs use one process and one thread."""
        import re

        if shutil.which("valgrind") is None:
            pytest.skip("valgrind not installed")
        counts = {}

        def both():
            for which in ("wwm", "ngram"):
                extra = ["--ngram_masking"] if which == "ngram" else []
                cmd = _ours(zh_caches, tmp_path / "out" / "t.tfrecord",
                            f"--vocab_file={vocab_file}", "--num_workers=1", "--num_threads=1",
                            "--do_whole_word_mask", *extra)
                _fresh(tmp_path / "out")
                r = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                                    "--trace-children=yes", "--cachegrind-out-file=/dev/null",
                                    *cmd], capture_output=True, text=True, check=True)
                refs = re.findall(r"I\s+refs:\s+([\d,]+)", r.stderr)
                assert refs, r.stderr[-2000:]
                counts[which] = sum(int(x.replace(",", "")) for x in refs)

        benchmark.pedantic(both, rounds=1, warmup_rounds=0)
        info = {"instructions_wwm": counts["wwm"], "instructions_ngram": counts["ngram"],
                "ngram_vs_wwm": round(counts["ngram"] / counts["wwm"], 4)}
        benchmark.extra_info.update(info)
        print(f"\nn-gram vs whole-word masking, create fast, instructions: {info}",
              file=sys.stderr)

    def test_sampler_ngram_vs_wwm(self, benchmark, vocab_file, zh_caches):
        """The sampler alone (sample_masks on zh_all's instances, dupe 5, 1 thread), CPU
        seconds, the two samplers alternating, best of 15 each."""
        import wwm_fast
        from wwm_fast.instances import build_instances, documents_from_encoding
        from wwm_fast.masking import MACBERT_NGRAM_PROBS, sample_masks
        from wwm_fast.segmentation import read_cache

        tok = wwm_fast.FullTokenizer(vocab_file)
        work = []
        for index, path in enumerate(zh_caches.split(",")):
            cache = read_cache(path)
            enc = tok.encode_file_bytes(cache.data, source=path, with_offsets=True)
            ws = wwm_fast.align_words(enc, cache.words, tok.is_subword(enc.ids)).word_start
            docs = documents_from_encoding(enc, ws)
            work.append((docs, build_instances(docs, tok, mode="fast", shard=index,
                                               dupe_factor=5, do_whole_word_mask=True)))
        times = {"wwm": [], "ngram": []}

        def once():
            for which in ("wwm", "ngram") if len(times["wwm"]) % 2 == 0 else ("ngram", "wwm"):
                probs = MACBERT_NGRAM_PROBS if which == "ngram" else None
                t0 = time.process_time()
                for docs, inst in work:
                    sample_masks(docs, inst, tok, ngram_probs=probs, num_threads=1)
                times[which].append(time.process_time() - t0)

        benchmark.pedantic(once, rounds=15, warmup_rounds=1)
        info = {"cpu_s_best_wwm": round(min(times["wwm"]), 4),
                "cpu_s_best_ngram": round(min(times["ngram"]), 4),
                "ngram_vs_wwm_best": round(min(times["ngram"]) / min(times["wwm"]), 3)}
        benchmark.extra_info.update(info)
        print(f"\nsample_masks alone, n-gram vs whole-word: {info}", file=sys.stderr)


BASELINE = os.environ.get("WWM_FAST_BASELINE")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not BASELINE, reason="set WWM_FAST_BASELINE=<another checkout, built in place>")
@pytest.mark.parametrize("name", list(TestCreate.OURS) + ["fast_16_shards_2_workers"])
def test_against_baseline(benchmark, request, vocab_file, tmp_path, name):
    """Our row ``name`` from WWM_FAST_BASELINE and from this checkout, alternating round by round
    (which goes first alternates too, after an untimed warm-up pair: _alternate); extra_info has
    wall and CPU seconds and the ratios."""
    if name == "fast_16_shards_2_workers":
        inputs = ",".join(request.getfixturevalue("zh_shards"))
        extra, rounds = ["--num_workers=2", "--num_threads=1"], 5
    else:
        source, extra, rounds = TestCreate.OURS[name]
        inputs = request.getfixturevalue("zh_inputs" if source == "text" else "zh_caches")
        extra = ["--num_workers=1", *extra]
    cmd = _ours(inputs, tmp_path / "out" / "t.tfrecord", f"--vocab_file={vocab_file}", *extra)

    def run(which):
        _fresh(tmp_path / "out")
        wall, _, cpu = _measure(cmd, cwd=BASELINE if which == "baseline" else REPO)
        return wall, cpu

    info = _alternate(benchmark, run, "baseline", "this", rounds)
    print(f"\n{name} vs baseline: {info}", file=sys.stderr)
