"""Fast mode's native shard kernel (wwm_fast._shard, csrc/fast_shard.h) against the staged API.

``run_shard`` writes every fast-mode shard through ``_shard``: text bytes (or documents) in,
framed records out, with the masks drawn per record in write order. These tests hold it to the
staged pipeline it replaces -- tokenize -> documents_from_encoding -> build_instances ->
sample_masks -> shuffled_order -> serialize_instances, and stats.count_corpus/count_instances --
byte for byte and figure for figure, on real text (zh_all samples), for plain and whole word
masking, with and without next-sentence pairs, for any thread count and chunk size. The vocab
parser is held to ``load_vocab``. The boundary cases check what Python can hand the kernel.
"""

from __future__ import annotations

import gc
import gzip
import os

import numpy as np
import pytest

from wwm_fast import _shard
from wwm_fast.instances import (Documents, build_instances, documents_from_encoding,
                                shuffled_order)
from wwm_fast.masking import sample_masks
from wwm_fast.stats import ShardStats, count_corpus, count_instances
from wwm_fast.tfrecord import serialize_instances
from wwm_fast.tokenization import FullTokenizer, load_vocab

from conftest import PEOPLE_DAILY, REVIEWS, require_shared_data

import native_inputs as ni

FIGURES = ["lines", "documents", "corpus_tokens", "unk_tokens", "word_continuations",
           "instances", "instance_tokens", "masked_tokens", "mask_replaced", "random_replaced",
           "random_next", "single_segment", "masked_group_hist"]


@pytest.fixture(scope="module")
def sample_text():
    """The first ~400 kB of each zh_all file (documents separated by blank lines), joined."""
    require_shared_data()
    parts = []
    for path in (PEOPLE_DAILY, REVIEWS):
        with gzip.open(path, "rb") as f:
            data = f.read(400_000)
        parts.append(data[:data.rindex(b"\n") + 1])
    return b"\n".join(parts)


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return FullTokenizer(vocab_file)


def _kernel(vocab_file, seq, pred, ww, ns, dupe=2, seed=7, chunk_bytes=4 << 20):
    with open(vocab_file, "rb") as f:
        vocab = _shard.Vocab(f.read())
    return _shard.Kernel(vocab, "[UNK]", True, 200, seq, pred, 0.15, 0.1, dupe, ww, ns, seed,
                         chunk_bytes)


def _staged(tok, docs, lines, index, ww, ns, seq, pred, dupe=2, seed=7):
    """The staged API's bytes and ShardStats for ``docs``."""
    inst = build_instances(docs, tok, mode="fast", shard=index, max_seq_length=seq,
                           max_predictions_per_seq=pred, masked_lm_prob=0.15, short_seq_prob=0.1,
                           dupe_factor=dupe, random_seed=seed, do_whole_word_mask=ww,
                           next_sentence=ns)
    inst = sample_masks(docs, inst, tok, max_seq_length=seq, max_predictions_per_seq=pred,
                        masked_lm_prob=0.15, do_whole_word_mask=ww, num_threads=1)
    order = shuffled_order(inst.n, seed, index)
    data = b"".join(bytes(c) for c in serialize_instances(
        docs, inst, tok, order, max_seq_length=seq, max_predictions_per_seq=pred, num_threads=1))
    stats = ShardStats([], "x", lines=lines)
    count_corpus(stats, docs, tok.unk_id, 0)
    count_instances(stats, inst, tok.vocab["[MASK]"])
    return data, stats


def _text_docs(tok, text, ww):
    enc = tok.encode_file_bytes(text, num_threads=1, with_offsets=False)
    ws = (1 - tok.is_subword(enc.ids)).astype(np.uint8) if ww else np.ones(len(enc.ids), np.uint8)
    return documents_from_encoding(enc, ws), len(enc.row_splits) - 1


def _drain(shard, threads):
    out = bytearray()
    while True:
        chunk = shard.next_chunk(threads)
        if chunk is None:
            return bytes(out)
        out += chunk


def _assert_figures(shard, stats):
    figures = shard.figures()
    assert {k: figures[k] for k in FIGURES} == {k: getattr(stats, k) for k in FIGURES}


# -- the vocab parser ----------------------------------------------------------------------------


def test_vocab_parser_is_load_vocab_on_the_chinese_vocab(vocab_file):
    with open(vocab_file, "rb") as f:
        v = _shard.Vocab(f.read())
    assert v.error_line == -1
    assert v.items() == list(load_vocab(vocab_file).items())
    assert v.find("[MASK]") == load_vocab(vocab_file)["[MASK]"] and v.find("nope") == -1


@pytest.mark.parametrize("data", [
    b"a\nb\n", b"a\nb", b"a\n\nb\n\n", b"a\r\n\r\nb\r", b"a\n\r", b"\n", b"\r\r\n", b" a \n",
    b"dup\nx\ndup\n", "\u2028\n##\u2028\n\u00a0x\u3000\n\x1cy\x1f\n\x85z\n\u200bw\n".encode(),
    "\ufeffa\n\u180eb\n\u2007\n".encode(), b"\t\x0b\x0c\n",
])
def test_vocab_parser_is_load_vocab_on_odd_files(tmp_path, data):
    """Line ends, '\\r' anywhere, duplicates (the later line number, the first place), and the
    whitespace str.strip() removes (U+2028, U+001C-1F, U+0085, NBSP...) but not U+200B/FEFF."""
    path = tmp_path / "vocab.txt"
    path.write_bytes(data)
    v = _shard.Vocab(data)
    assert v.error_line == -1
    assert v.items() == list(load_vocab(str(path)).items())


@pytest.mark.parametrize("data, line", [(b"a\n\xff\n", 1), (b"\xc3\n", 0), (b"a\nb\n\xed\xa0\x80", 2)])
def test_vocab_parser_reports_the_first_invalid_line(tmp_path, data, line):
    path = tmp_path / "vocab.txt"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"line {line + 1}: invalid UTF-8"):
        load_vocab(str(path))
    assert _shard.Vocab(data).error_line == line


# -- the kernel is the staged pipeline -----------------------------------------------------------


@pytest.mark.parametrize("ww, ns, seq, pred", [(False, True, 128, 20), (True, True, 64, 10),
                                               (True, False, 32, 5)])
def test_text_shard_is_the_staged_pipeline(vocab_file, tokenizer, sample_text, ww, ns, seq, pred):
    docs, lines = _text_docs(tokenizer, sample_text, ww)
    want, stats = _staged(tokenizer, docs, lines, 3, ww, ns, seq, pred)
    kernel = _kernel(vocab_file, seq, pred, ww, ns)
    for threads in (1, 2):
        shard, err = kernel.text_shard(sample_text, "strict", 3, threads)
        assert err is None and shard.n_instances == stats.instances
        assert _drain(shard, threads) == want
        _assert_figures(shard, stats)
    # tiny chunks (one record each: the size is raised to one record's bound) and 3 threads
    small = _kernel(vocab_file, seq, pred, ww, ns, chunk_bytes=1)
    shard, _ = small.text_shard(sample_text, "strict", 3, 3)
    assert _drain(shard, 3) == want


def test_documents_shard_is_the_staged_pipeline(vocab_file, tokenizer, sample_text):
    """Documents from elsewhere (a segmentation cache): word starts at random places."""
    docs, lines = _text_docs(tokenizer, sample_text, True)
    rng = np.random.default_rng(5)
    ws = (rng.random(len(docs.ids)) < 0.6).astype(np.uint8)
    docs = Documents(docs.ids, ws, docs.sent_splits, docs.doc_splits)
    want, stats = _staged(tokenizer, docs, lines, 1, True, True, 128, 20)
    kernel = _kernel(vocab_file, 128, 20, True, True)
    shard = kernel.documents_shard(docs.ids, docs.word_start, docs.sent_splits, docs.doc_splits,
                                   1, lines)
    assert _drain(shard, 2) == want
    _assert_figures(shard, stats)


def test_every_line_kind(vocab_file, tokenizer):
    """Blank lines end documents, whitespace-only lines do not, '\\r' disappears, no final
    newline, empty input."""
    text = ("中国人\n\n\n  \n人ab国。\r\n国\n \t\n\n中。\n人人\n\n\n" * 40 + "末").encode()
    for data in (text, b"", b"\n\n", b" \n"):
        docs, lines = _text_docs(tokenizer, data, False)
        want, stats = _staged(tokenizer, docs, lines, 0, False, True, 16, 3, dupe=3)
        shard, err = _kernel(vocab_file, 16, 3, False, True, dupe=3).text_shard(data, "strict",
                                                                                 0, 1)
        assert err is None and _drain(shard, 1) == want
        _assert_figures(shard, stats)


def test_invalid_utf8(vocab_file):
    kernel = _kernel(vocab_file, 32, 5, False, True)
    data = "中国\n人人\n".encode() + b"ab\xffc\r\n" + "国\n".encode()
    shard, err = kernel.text_shard(data, "strict", 0, 1)
    assert shard is None
    line, byte, length, begin, end = err
    assert (line, byte, length) == (2, 2, 1) and data[begin:end] == b"ab\xffc\r\n"
    shard, err = kernel.text_shard(data, "ignore", 0, 1)
    assert err is None and shard.figures()["lines"] == 4


# -- the boundary --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_kernel():
    vocab = _shard.Vocab(("\n".join(ni.VOCAB) + "\n").encode())
    return _shard.Kernel(vocab, "[UNK]", True, 200, 16, 3, 0.15, 0.1, 2, True, True, 1)


def _corpus(n_sent=4, length=5):
    ids = np.arange(n_sent * length, dtype=np.int32) % len(ni.VOCAB)
    return dict(ids=ids, word_start=np.ones(len(ids), np.uint8),
                sent_splits=np.arange(0, n_sent * length + 1, length, dtype=np.int64),
                doc_splits=np.array([0, n_sent // 2, n_sent], np.int64))


def test_bad_buffers_are_type_errors(tiny_kernel):
    c = _corpus()
    for key, bad in (("ids", c["ids"].astype(np.int64)), ("word_start", c["word_start"] != 0),
                     ("sent_splits", c["sent_splits"].astype(np.float64)),
                     ("doc_splits", c["doc_splits"].reshape(1, -1)),
                     ("ids", np.arange(40, dtype=np.int32)[::2])):
        with pytest.raises(TypeError, match=key):
            tiny_kernel.documents_shard(**{**c, key: bad}, index=0, lines=0)
    with pytest.raises(TypeError):
        tiny_kernel.text_shard(np.zeros(3, np.int32), "strict", 0, 1)


@pytest.mark.parametrize("key, value, message", [
    ("word_start", np.ones(3, np.uint8), "word_start has 3 entries"),
    ("sent_splits", np.zeros(0, np.int64), "must not be empty"),
    ("sent_splits", np.array([0, 5, 3, 15, 20], np.int64), "sent"),
    ("sent_splits", np.array([0, 5, 10, 15, 2**62], np.int64), "sent"),
    ("doc_splits", np.array([0, 3, 9], np.int64), "doc"),
    ("doc_splits", np.array([-1, 2, 4], np.int64), "doc"),
])
def test_bad_corpora_are_value_errors(tiny_kernel, key, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_kernel.documents_shard(**{**_corpus(), key: value}, index=0, lines=0)


def test_bad_kernel_arguments():
    vocab = _shard.Vocab(("\n".join(ni.VOCAB) + "\n").encode())
    args = dict(vocab=vocab, unk_token="[UNK]", do_lower_case=True, max_input_chars_per_word=200,
                max_seq_length=16, max_predictions=3, masked_lm_prob=0.15, short_seq_prob=0.1,
                dupe_factor=2, whole_word=True, next_sentence=True, seed=1)
    for change, message in (({"max_seq_length": 2}, "max_seq_length"),
                            ({"max_predictions": 0}, "max_predictions"),
                            ({"masked_lm_prob": float("nan")}, "masked_lm_prob"),
                            ({"dupe_factor": 0}, "dupe_factor"),
                            ({"unk_token": "[NOPE]"}, "NOPE"),
                            ({"chunk_bytes": 2**40}, "chunk_bytes")):
        with pytest.raises(ValueError, match=message):
            _shard.Kernel(**{**args, **change})
    no_mask = _shard.Vocab(("\n".join(v for v in ni.VOCAB if v != "[MASK]")).encode())
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        _shard.Kernel(**{**args, "vocab": no_mask})
    with pytest.raises(ValueError, match="errors"):
        _shard.Kernel(**args).text_shard(b"a\n", "replace", 0, 1)


def test_a_shard_keeps_what_it_reads_alive(tiny_kernel):
    """The arrays it borrowed and the kernel's tables outlive their Python names; a chunk
    outlives the shard."""
    c = {k: v.copy() for k, v in _corpus(8, 7).items()}
    want = _drain(tiny_kernel.documents_shard(**c, index=2, lines=0), 1)
    vocab = _shard.Vocab(("\n".join(ni.VOCAB) + "\n").encode())
    kernel = _shard.Kernel(vocab, "[UNK]", True, 200, 16, 3, 0.15, 0.1, 2, True, True, 1)
    shard = kernel.documents_shard(**c, index=2, lines=0)
    del c, kernel, vocab
    gc.collect()
    chunk = shard.next_chunk(2)
    del shard
    gc.collect()
    assert bytes(chunk) == want


def test_threads_share_a_shard_safely(vocab_file, sample_text):
    """Python threads calling next_chunk and figures on one shard at once: every record is
    written once (a chunk's bytes are only guaranteed until two more are made, so the total
    size and the figures are what can be compared)."""
    import threading

    kernel = _kernel(vocab_file, 64, 10, True, True, chunk_bytes=1)
    first, _ = kernel.text_shard(sample_text, "strict", 0, 1)
    want = len(_drain(first, 1))
    shard, _ = kernel.text_shard(sample_text, "strict", 0, 1)
    sizes = []

    def work():
        while True:
            chunk = shard.next_chunk(1)
            if chunk is None:
                return
            sizes.append(len(chunk))
            shard.figures()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sizes) == want and len(sizes) == shard.n_instances
    assert shard.figures() == first.figures()


# -- through create_instances --------------------------------------------------------------------


@pytest.mark.parametrize("vocab, message", [
    (b"[UNK]\n[CLS]\n[SEP]\n\xff\n", r"line 4: invalid UTF-8 b'\\xff'"),
    (b"[CLS]\n[SEP]\n[MASK]\n", r"has no '\[UNK\]' entry"),
    (b"[UNK]\n[CLS]\n[SEP]\n", r"lacks \['\[MASK\]'\]"),
    (b"", "vocab_file is empty"),
])
def test_bad_vocab_errors_in_fast_mode(tmp_path, vocab, message):
    """Fast mode checks the vocab with the kernel; its errors are still the tokenizer's, naming
    the file, line and entry, and nothing is written."""
    import wwm_fast

    (tmp_path / "vocab.txt").write_bytes(vocab)
    (tmp_path / "in.txt").write_text("中国人\n")
    with pytest.raises(ValueError, match=message):
        wwm_fast.create_instances(str(tmp_path / "in.txt"), str(tmp_path / "vocab.txt"),
                                  str(tmp_path / "out" / "x.tfrecord"), progress=False)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_text_shards_run_without_numpy(tmp_path, vocab_file):
    """`wwm-fast create` on text never imports numpy (its ~0.1 s of start-up was a tenth of the
    run); a segmentation cache is still recognised by its magic bytes."""
    import subprocess
    import sys

    from wwm_fast import shard
    from wwm_fast.segmentation.cache import MAGIC

    assert MAGIC.startswith(shard._CACHE_MAGIC_PREFIX)
    (tmp_path / "in.txt").write_text("中国人。\n人人\n\n国中\n")
    code = (
        "import sys, runpy, atexit\n"
        "atexit.register(lambda: print('NUMPY', 'numpy' in sys.modules))\n"
        f"sys.argv = ['wwm-fast', 'create', '--input_file', {str(tmp_path / 'in.txt')!r},\n"
        f"            '--output_file', {str(tmp_path / 'out.tfrecord')!r},\n"
        f"            '--vocab_file', {vocab_file!r}, '--noprogress', '--dupe_factor=1']\n"
        "runpy.run_module('wwm_fast', run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "NUMPY False" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "out.tfrecord").stat().st_size > 0
