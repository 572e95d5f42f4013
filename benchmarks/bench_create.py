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
import tempfile
import time

import pytest
from conftest import _alternate, _median_ci, _ratio_stats, _rotate, launch  # noqa: F401

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
    """Issue 15: n-gram masking costs <= 10% over whole-word masking in fast mode.

    Three sides rotate round by round (_rotate: one untimed warm-up round, then each side in
    every place of the order equally often): ``wwm`` (whole-word masking), ``wwm_again`` (the
    identical command again: the A/A control) and ``ngram`` (MacBERT's n-grams). extra_info has,
    for wall and CPU seconds, n-gram over whole-word and whole-word over itself: best vs best,
    the median of the rounds' ratios and that median's ~95% confidence interval (_median_ci).

    The statistic the target is judged by: ``command_ngram_vs_wwm`` of
    test_masking_stage_ngram_vs_wwm, 1 + the extra CPU seconds of the n-gram record pass over the
    whole-word command's CPU seconds. Why: the two commands run the same code everywhere but in the
    record pass (callgrind: every other function executes the same instructions to 0.01%; peak RSS
    and page faults are equal), so what n-gram masking adds to the command is what it adds to that
    pass; the pass is timed in 1 ms turns alternating with whole-word masking's, two turns a
    millisecond apart see the same machine, and its A/A control stays within about 1% of 1 even on
    the loaded 2-vCPU machine. The denominator is the best CPU time of ``create_instances`` in this
    process (no interpreter start-up): smaller than the command's, so the estimate errs high. The
    whole-command rows (a process each, and in this process) are the direct check: their median of
    pairs and its confidence interval must agree with it. They do not judge alone because a ~1 s
    process' CPU time varies by about +-10% with the neighbours' load on this machine: the A/A
    control's median of 21 pairs strays by up to ~6% and its best vs best by ~10% for identical
    work, so neither can resolve a 10% target in every run (RESULTS.md). Best vs best, the luckiest
    process of each side, is the worst of them and only printed. Every row: fast create, 1 worker,
    1 thread, zh_all's jieba caches, dupe 5, seq 128 (the create table's settings)."""

    SIDES = ["wwm", "wwm_again", "ngram"]
    ROUNDS = 21  # a multiple of len(SIDES): every side equally often in every place

    @staticmethod
    def _report(runs, what):
        info = _ratio_stats(runs, "wwm", "ngram")
        info.update(_ratio_stats(runs, "wwm", "wwm_again", label="aa_control"))
        print(f"\nn-gram vs whole-word masking, {what}: {info}", file=sys.stderr)
        return info

    def test_create_ngram_vs_wwm(self, benchmark, vocab_file, zh_caches, tmp_path):
        """The whole ``wwm-fast create`` command, a process each (wait4's CPU seconds)."""
        def run(which):
            extra = ["--ngram_masking"] if which == "ngram" else []
            cmd = _ours(zh_caches, tmp_path / "out" / "t.tfrecord", f"--vocab_file={vocab_file}",
                        "--num_workers=1", "--num_threads=1", "--do_whole_word_mask", *extra)
            _fresh(tmp_path / "out")
            wall, _, cpu = _measure(cmd)
            return wall, cpu

        runs = {}
        benchmark.pedantic(lambda: runs.update(_rotate(run, self.SIDES, self.ROUNDS)), rounds=1,
                           warmup_rounds=0)
        benchmark.extra_info.update(self._report(runs, "create fast, 1 worker, 1 thread"))

    def test_create_in_process_ngram_vs_wwm(self, benchmark, vocab_file, zh_caches, tmp_path):
        """The same work without the interpreter's start-up and imports: ``create_instances``
        (what the command runs: 1 worker = in this process) called in this process,
        ``time.process_time`` (every thread of the process) around each call. Each call builds
        its shard kernel (vocab included) as the command does."""
        import gc

        from wwm_fast import create_instances
        from wwm_fast import shard as shard_module

        def run(which):
            _fresh(tmp_path / "out")
            shard_module._KERNELS.clear()  # as in a new process: the kernel is built in the call
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            create_instances(zh_caches, vocab_file, str(tmp_path / "out" / "t.tfrecord"),
                             max_seq_length=128, max_predictions_per_seq=20, dupe_factor=5,
                             masked_lm_prob=0.15, short_seq_prob=0.1, random_seed=12345,
                             do_whole_word_mask=True, ngram_masking=which == "ngram",
                             num_workers=1, num_threads=1, overwrite=True, progress=False)
            return time.perf_counter() - w0, time.process_time() - c0

        runs = {}
        benchmark.pedantic(lambda: runs.update(_rotate(run, self.SIDES, self.ROUNDS)), rounds=1,
                           warmup_rounds=0)
        benchmark.extra_info.update(self._report(runs, "create_instances in process"))

    def test_masking_stage_ngram_vs_wwm(self, benchmark, vocab_file, zh_caches):
        """Where the two commands differ, finely interleaved: the shard kernel's record pass
        (per record in write order: its masks, whole words or n-grams, and its framed bytes;
        ``Shard.next_chunk``, 1 thread) over zh_all's shards, for three kernels (whole-word,
        whole-word again, n-gram) on the same documents, taking turns chunk by chunk (1 MB
        chunks, about 1 ms each; the order rotates), ``time.thread_time`` around each chunk.
        Two turns a millisecond apart see the same machine, so the sums compare closely.
        Repeated REPS times (fresh shards each time); per repetition the ratio of the sums.
        Then the extra CPU seconds of the n-gram pass over the whole command's CPU seconds
        (``create_instances`` in this process, whole-word, once after each repetition, the best
        of them: the smallest denominator, so the estimate errs high): what n-gram masking adds
        to the command, given that every other stage runs the same code (the callgrind
        comparison in RESULTS.md)."""
        import dataclasses
        import statistics

        from wwm_fast import _shard, create_instances
        from wwm_fast import shard as shard_module
        from wwm_fast.instances import documents_from_encoding
        from wwm_fast.masking import MACBERT_NGRAM_PROBS, parse_ngram_probs
        from wwm_fast.shard import ShardJob, read_shard, tokenizer_for

        reps = 15
        job = ShardJob(os.path.abspath(vocab_file), True, 128, 20, 0.15, 0.1, 5, 12345, True,
                       None, "fast", True, False, "strict", 1)
        with open(vocab_file, "rb") as f:
            vocab = _shard.Vocab(f.read())
        probs = parse_ngram_probs(MACBERT_NGRAM_PROBS)

        def kernel(ngram):
            return _shard.Kernel(vocab, "[UNK]", True, 200, 128, 20, 0.15, 0.1, 5, True, True,
                                 12345, chunk_bytes=1 << 20, ngram_probs=probs if ngram else None)

        kernels = {"wwm": kernel(False), "wwm_again": kernel(False), "ngram": kernel(True)}
        docs = []
        for index, path in enumerate(zh_caches.split(",")):
            enc, word_start, _, _ = read_shard(path, dataclasses.replace(job),
                                               tokenizer_for(job))
            d = documents_from_encoding(enc, word_start)
            docs.append((index, len(enc.row_splits) - 1, d))
        sums = {side: [] for side in self.SIDES}

        def one_pass(rep):
            total = dict.fromkeys(self.SIDES, 0.0)
            for index, lines, d in docs:
                shards = {side: k.documents_shard(d.ids, d.word_start, d.sent_splits,
                                                  d.doc_splits, index, lines)
                          for side, k in kernels.items()}
                turn = rep
                while True:
                    k = turn % len(self.SIDES)
                    turn += 1
                    got = 0
                    for side in self.SIDES[k:] + self.SIDES[:k]:
                        t0 = time.thread_time()
                        chunk = shards[side].next_chunk(1)
                        total[side] += time.thread_time() - t0
                        got += chunk is not None
                    if got == 0:
                        break
                    assert got == len(self.SIDES)  # the same records: the same chunks
            for side in self.SIDES:
                sums[side].append(total[side])

        def command_cpu():
            with tempfile.TemporaryDirectory() as out:
                shard_module._KERNELS.clear()  # built in the call, as in a new process
                c0 = time.process_time()
                create_instances(zh_caches, vocab_file, os.path.join(out, "t.tfrecord"),
                                 max_seq_length=128, max_predictions_per_seq=20, dupe_factor=5,
                                 masked_lm_prob=0.15, short_seq_prob=0.1, random_seed=12345,
                                 do_whole_word_mask=True, num_workers=1, num_threads=1,
                                 progress=False)
                return time.process_time() - c0

        commands = []

        def measure():
            one_pass(0)  # warm-up
            sums.update({side: [] for side in self.SIDES})
            for rep in range(reps):
                one_pass(rep)
                commands.append(command_cpu())

        benchmark.pedantic(measure, rounds=1, warmup_rounds=0)
        command = min(commands)  # the smallest denominator: the estimate errs high
        info = {"command_cpu_s_wwm_in_process_best": round(command, 3),
                "command_cpu_s_wwm_in_process_median": round(statistics.median(commands), 3),
                "pass_cpu_s_median_wwm": round(statistics.median(sums["wwm"]), 4)}
        for other, label in (("ngram", "ngram_vs_wwm"), ("wwm_again", "aa_control")):
            ratios = [y / x for y, x in zip(sums[other], sums["wwm"])]
            med, lo, hi = _median_ci(ratios)
            info[f"pass_cpu_s_median_{other}"] = round(statistics.median(sums[other]), 4)
            info[f"pass_{label}_median_of_reps"] = round(med, 4)
            info[f"pass_{label}_ci95"] = (round(lo, 4), round(hi, 4))
            info[f"pass_{label}_range"] = (round(min(ratios), 4), round(max(ratios), 4))
            # the judged statistic: 1 + the extra seconds over the whole command's seconds
            med, lo, hi = _median_ci([1 + (y - x) / command
                                      for y, x in zip(sums[other], sums["wwm"])])
            info[f"command_{label}"] = round(med, 4)
            info[f"command_{label}_ci95"] = (round(lo, 4), round(hi, 4))
        benchmark.extra_info.update(info)
        print(f"\nrecord pass (masks + framing), n-gram vs whole-word, 1 ms turns: {info}",
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
