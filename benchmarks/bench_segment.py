"""Word segmentation throughput on zh_all: the `segment` stage vs raw ltp-extension, and jieba.

    pytest benchmarks/bench_segment.py --benchmark-columns=min,median,rounds -s

Variants, all on zh_all (People's Daily 1998 + reviews, 4,407,659 characters in 129,282 lines):

The LTP rows run ltp-extension (``ltp-rust:``); the native kernel that ``ltp:`` now runs is
measured against it in bench_ltp_cws.py.

* ``TestRaw``: ``ltp_extension`` ``CWSModel.batch_predict`` on all lines in one call, one thread,
  model already loaded -- the floor, what the segment stage wraps; jieba's ``cut`` per line.
* ``TestSegmentBatch``: ``Segmenter.segment_batch`` in this process (batch_predict + word spans
  over the original lines).
* ``TestSegmentCommand``: ``segment_files`` (``wwm-fast segment``) with 1 and 2 worker
  processes: reading, decoding, segmenting, spans, writing the caches, worker start-up and model
  loading included.
* ``TestAligner``: the aligner kernel (``align_words``) on People's Daily's gold segmentation,
  1 and 2 threads, in M tokens/s.

Characters per second (best round) are in each result's extra_info; the last test prints the
overhead of the segment stage over raw batch_predict and the 2-worker scaling.

LTP model: $WWM_FAST_LTP_MODEL if set, else one trained once and kept in pytest's cache folder
(_ltp_models.py's ``ltp_model_file``, shared with bench_ltp_cws.py; bench_convert.py and
bench_e2e.py import it from here).
"""

from __future__ import annotations

import gzip
import sys

import pytest

pytest.importorskip("pytest_benchmark")

from _ltp_models import lines, ltp_model_file, n_chars, record_rate  # noqa: E402,F401  (fixtures)
from conftest import SHARED_DATA  # noqa: E402

RESULTS: dict = {}
CPU: dict = {}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (worker processes)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(key, fn):
    """Wrap fn to record its least CPU time (all processes) per call under key."""
    def run(*args, **kwargs):
        c0 = _cpu()
        out = fn(*args, **kwargs)
        used = _cpu() - c0
        CPU[key] = min(CPU.get(key, float("inf")), used)
        return out
    return run


def _record(benchmark, key, n_chars, **info):
    record_rate(benchmark, RESULTS, key, n_chars,
                cpu_s_best=round(CPU.get(key, float("nan")), 2), **info)


@pytest.fixture(scope="module")
def ltp(ltp_model_file):
    from wwm_fast.segmentation import get_segmenter

    seg = get_segmenter(f"ltp-rust:{ltp_model_file}")  # ltp-extension; native: bench_ltp_cws.py
    seg.load()
    return seg


class TestRaw:
    def test_ltp_batch_predict(self, benchmark, ltp, lines, n_chars):
        model = ltp.load()
        out = benchmark.pedantic(_timed("raw_ltp", model.batch_predict), args=(lines,),
                                 kwargs=dict(parallelism=False), rounds=2, warmup_rounds=0)
        assert len(out) == len(lines)
        _record(benchmark, "raw_ltp", n_chars, threads=1)

    def test_jieba_cut(self, benchmark, lines, n_chars):
        pytest.importorskip("jieba")
        from wwm_fast.segmentation import get_segmenter

        tk = get_segmenter("jieba").load()

        def run():
            return [list(tk.cut(x)) for x in lines]

        out = benchmark.pedantic(_timed("raw_jieba", run), rounds=1, warmup_rounds=0)
        assert len(out) == len(lines)
        _record(benchmark, "raw_jieba", n_chars, threads=1)


class TestSegmentBatch:
    def test_ltp(self, benchmark, ltp, lines, n_chars):
        words = benchmark.pedantic(_timed("batch_ltp", ltp.segment_batch), args=(lines,), rounds=2,
                                   warmup_rounds=0)
        assert len(words.row_splits) == len(lines) + 1 and ltp.n_unmatched == 0
        _record(benchmark, "batch_ltp", n_chars, threads=1, words=len(words.starts))


class TestSegmentCommand:
    @pytest.mark.parametrize("workers", [1, 2])
    def test_ltp(self, benchmark, ltp_model_file, zh_all_dir, tmp_path, n_chars, workers):
        self._run(benchmark, f"ltp-rust:{ltp_model_file}", zh_all_dir, tmp_path, n_chars, workers,
                  "ltp")

    @pytest.mark.parametrize("workers", [1, 2])
    def test_jieba(self, benchmark, zh_all_dir, tmp_path, n_chars, workers):
        pytest.importorskip("jieba")
        self._run(benchmark, "jieba", zh_all_dir, tmp_path, n_chars, workers, "jieba")

    @staticmethod
    def _run(benchmark, spec, folder, tmp_path, n_chars, workers, name):
        from wwm_fast.segmentation import segment_files

        def run():
            return segment_files(str(folder / "*.txt"), spec, str(tmp_path), overwrite=True,
                                 num_workers=workers, progress=False)

        key = f"cmd_{name}_{workers}"
        report = benchmark.pedantic(_timed(key, run), rounds=2 if name == "ltp" else 1,
                                    warmup_rounds=0)
        assert report.n_chars == n_chars and report.n_segmented == 2
        _record(benchmark, key, n_chars, workers=workers,
                words=report.n_words)


class TestAligner:
    """The aligner kernel alone: People's Daily with its gold segmentation (1,833,718 tokens),
    tokens and word spans computed beforehand (not timed)."""

    @pytest.fixture(scope="class")
    @classmethod
    def gold(cls, vocab_file):
        import numpy as np

        import wwm_fast
        from wwm_fast.segmentation._spans import spans_from_pieces

        with gzip.open(SHARED_DATA / "people_daily_199801.seg.txt.gz", "rt",
                       encoding="utf-8") as f:
            pieces = [line.split() for line in f.read().split("\n")]
        raw = ["".join(p) for p in pieces]
        spans, n_bad = spans_from_pieces(raw, pieces)
        assert n_bad == 0
        tok = wwm_fast.FullTokenizer(vocab_file)
        enc = tok.encode_batch(raw)
        return enc, spans, np.ascontiguousarray(tok.is_subword(enc.ids))

    @pytest.mark.parametrize("threads", [1, 2])
    def test_align_words(self, benchmark, gold, threads):
        from wwm_fast import align_words

        enc, spans, sub = gold
        out = benchmark.pedantic(align_words, args=(enc, spans, sub),
                                 kwargs=dict(num_threads=threads), rounds=30, warmup_rounds=3)
        n, stats = len(enc.ids), benchmark.stats.stats
        RESULTS[f"align_{threads}"] = stats.min
        benchmark.extra_info.update(tokens=n, threads=threads, fallback_lines=out.n_fallback,
                                    mtokens_per_s_best=round(n / stats.min / 1e6, 1),
                                    mtokens_per_s_median=round(n / stats.median / 1e6, 1))
        print(f"\naligner, {threads} thread(s): {benchmark.extra_info}", file=sys.stderr)


def test_summary(capsys, n_chars):
    """Overhead of the segment stage over raw batch_predict, and 2-worker scaling."""
    r = RESULTS
    rows = []
    for key, label in [("raw_ltp", "raw ltp-extension batch_predict, 1 thread"),
                       ("batch_ltp", "Segmenter.segment_batch (ltp), in process"),
                       ("cmd_ltp_1", "segment command, ltp, 1 worker"),
                       ("cmd_ltp_2", "segment command, ltp, 2 workers"),
                       ("raw_jieba", "raw jieba cut, 1 thread"),
                       ("cmd_jieba_1", "segment command, jieba, 1 worker"),
                       ("cmd_jieba_2", "segment command, jieba, 2 workers")]:
        if key in r:
            rows.append(f"  {label:46s} {r[key]:7.2f} s wall {n_chars / r[key] / 1e6:6.3f} "
                        f"M chars/s, {CPU.get(key, float('nan')):7.2f} s CPU (all processes)")
    if "raw_ltp" in r and "batch_ltp" in r:
        rows.append(f"  segment_batch over raw: {100 * (r['batch_ltp'] / r['raw_ltp'] - 1):+.1f}%")
    if "raw_ltp" in r and "cmd_ltp_1" in r:
        rows.append(f"  segment command (1 worker) over raw: "
                    f"{100 * (r['cmd_ltp_1'] / r['raw_ltp'] - 1):+.1f}% wall, "
                    f"{100 * (CPU['cmd_ltp_1'] / CPU['raw_ltp'] - 1):+.1f}% CPU")
    if "cmd_ltp_1" in CPU and "cmd_ltp_2" in CPU:
        rows.append(f"  ltp CPU of 2 workers vs 1 worker: "
                    f"{100 * (CPU['cmd_ltp_2'] / CPU['cmd_ltp_1'] - 1):+.1f}% (start-up, model "
                    f"loads, IPC)")
    for name in ("ltp", "jieba"):
        if f"cmd_{name}_1" in r and f"cmd_{name}_2" in r:
            rows.append(f"  {name} 2 workers vs 1: {r[f'cmd_{name}_1'] / r[f'cmd_{name}_2']:.2f}x")
    with capsys.disabled():
        print("\nsegmentation on zh_all (best round):\n" + "\n".join(rows))
