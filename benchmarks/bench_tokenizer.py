"""Tokenizer throughput on zh_all: wwm_fast vs Google FullTokenizer vs HF tokenizers (vs TF Text).

    pytest benchmarks/bench_tokenizer.py --benchmark-columns=min,median,rounds

MB/s (input bytes per second of wall time, best round) is recorded in each result's extra_info.
Every variant checks its output: the token count of zh_all under Google's rules is 4,336,084
(HF differs by 13 tokens: it deletes private-use characters).
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pytest_benchmark")

from conftest import ZH_ALL_TOKENS  # noqa: E402


def _record(benchmark, n_bytes, n_tokens, threads):
    stats = benchmark.stats.stats
    benchmark.extra_info.update(
        threads=threads,
        mb_per_s_best=round(n_bytes / stats.min / 1e6, 2),
        mb_per_s_median=round(n_bytes / stats.median / 1e6, 2),
        tokens=n_tokens,
    )


@pytest.fixture(scope="module")
def tok(vocab_file):
    import wwm_fast

    return wwm_fast.FullTokenizer(vocab_file)


@pytest.fixture(scope="module")
def hf(vocab_file):
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.BertWordPieceTokenizer(vocab_file, lowercase=True)


class TestWwmFast:
    @pytest.mark.parametrize("threads", [1, 2])
    def test_buffer(self, benchmark, tok, zh_all_bytes, threads):
        """The file path: one bytes buffer, split on \\n in C++ (what `create` uses)."""
        enc = benchmark.pedantic(
            tok._encode_buffer, args=(zh_all_bytes, None, "strict", True, threads, "zh_all"),
            rounds=15, warmup_rounds=2)
        assert len(enc.ids) == ZH_ALL_TOKENS
        _record(benchmark, len(zh_all_bytes), len(enc.ids), threads)

    def test_buffer_scaling(self, benchmark, tok, zh_all_bytes):
        """1 and 2 threads alternating call by call (the machine is shared: both see the same
        load); the benchmark times a pair; extra_info has the scaling, best vs best and the median
        over the pairs."""
        import statistics
        import time

        walls = {1: [], 2: []}

        def pair():
            for threads in (1, 2):
                t0 = time.perf_counter()
                tok._encode_buffer(zh_all_bytes, None, "strict", True, threads, "zh_all")
                walls[threads].append(time.perf_counter() - t0)

        benchmark.pedantic(pair, rounds=30, warmup_rounds=2)
        info = {"mb_per_s_best_1_thread": round(len(zh_all_bytes) / min(walls[1]) / 1e6, 1),
                "mb_per_s_best_2_threads": round(len(zh_all_bytes) / min(walls[2]) / 1e6, 1),
                "scaling_best": round(min(walls[1]) / min(walls[2]), 2),
                "scaling_median_of_pairs": round(statistics.median(
                    a / b for a, b in zip(walls[1], walls[2])), 2)}
        benchmark.extra_info.update(info)
        print(f"\ntokenizer 1 vs 2 threads: {info}")

    @pytest.mark.parametrize("threads", [1, 2])
    def test_encode_batch(self, benchmark, tok, zh_all_bytes, zh_all_lines, threads):
        """The Python API: a list of str in, flat arrays with offsets out."""
        enc = benchmark.pedantic(tok.encode_batch, args=(zh_all_lines,),
                                 kwargs=dict(num_threads=threads), rounds=15, warmup_rounds=2)
        assert len(enc.ids) == ZH_ALL_TOKENS
        _record(benchmark, len(zh_all_bytes), len(enc.ids), threads)


class TestGoogle:
    def test_full_tokenizer(self, benchmark, vocab_file, zh_all_bytes, zh_all_lines):
        """bert-tensorflow 1.0.4 FullTokenizer.tokenize + convert_tokens_to_ids, per line."""
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        from reference import google_tokenizer

        ref = google_tokenizer(vocab_file, True)

        def run():
            n = 0
            for line in zh_all_lines:
                n += len(ref.convert_tokens_to_ids(ref.tokenize(line)))
            return n

        n = benchmark.pedantic(run, rounds=1, warmup_rounds=0)
        assert n == ZH_ALL_TOKENS
        _record(benchmark, len(zh_all_bytes), n, 1)


class TestHFTokenizers:
    def test_encode_per_line_1thread(self, benchmark, hf, zh_all_bytes, zh_all_lines):
        """encode() per line: single-threaded."""
        def run():
            return sum(len(hf.encode(line, add_special_tokens=False).ids) for line in zh_all_lines)

        n = benchmark.pedantic(run, rounds=2, warmup_rounds=0)
        assert abs(n - ZH_ALL_TOKENS) < 100
        _record(benchmark, len(zh_all_bytes), n, 1)

    def test_encode_batch_all_threads(self, benchmark, hf, zh_all_bytes, zh_all_lines):
        """encode_batch(): rayon over all cores (2 here)."""
        def run():
            return sum(len(e.ids) for e in hf.encode_batch(zh_all_lines, add_special_tokens=False))

        n = benchmark.pedantic(run, rounds=2, warmup_rounds=0)
        assert abs(n - ZH_ALL_TOKENS) < 100
        _record(benchmark, len(zh_all_bytes), n, os.cpu_count())


class TestTFText:
    def test_fast_bert_tokenizer(self, benchmark, vocab_file, zh_all_bytes, zh_all_lines):
        text = pytest.importorskip("tensorflow_text")
        import tensorflow as tf

        with open(vocab_file, encoding="utf-8") as f:
            vocab = f.read().split("\n")[:-1]
        tok = text.FastBertTokenizer(vocab=vocab, lower_case_nfd_strip_accents=True,
                                     token_out_type=tf.int32)
        batch = tf.constant(zh_all_lines)

        def run():
            return int(tok.tokenize(batch).flat_values.shape[0])

        n = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
        _record(benchmark, len(zh_all_bytes), n, os.cpu_count())  # TF ops use every core
