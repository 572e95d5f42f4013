"""Segmentation caches and ``wwm-fast segment``: lossless, verified, parallel, resumable, atomic.

Mirrors wwm_fast/segmentation/{cache,pipeline}.py and wwm_fast/commands/segment.py.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wwm_fast import FullTokenizer, WordSpans, align_words
from wwm_fast.cli import main as cli_main
from wwm_fast.files import TMP_SUFFIX, decode_lines
from wwm_fast.segmentation import (get_segmenter, is_cache_file, read_cache, read_cache_header,
                                   segment_files, write_cache)
from wwm_fast.segmentation import cache as cache_mod

from segmentation_helpers import gold_sentences, ltp_model, write_lines  # noqa: F401
from test_segmentation import check_spans


def same_words(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


# -- the file format ---------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_roundtrip_is_lossless(tmp_path, compress):
    # \r, invalid UTF-8 (kept in data, dropped from lines with errors=ignore), no final newline
    data = "迈向 充满\r\n希望\n\n  \u3000\nend".encode("utf-8") + b"\xff tail"
    lines = decode_lines(data, "ignore")
    seg = get_segmenter("pre")
    words = seg.segment_batch(lines)
    path = tmp_path / "x.wwmseg"
    header = write_cache(path, data, words, segmenter=seg.spec, source="/src/x.txt",
                         errors="ignore", compress=compress)
    assert is_cache_file(path)
    shard = read_cache(path)
    assert shard.data == data
    assert shard.errors == "ignore" and shard.source == "/src/x.txt"
    assert shard.segmenter == "pre: " and shard.n_lines == len(lines) == 5
    assert same_words(shard.words, words)
    assert shard.header["n_words"] == len(words.starts) == header["n_words"]
    assert read_cache_header(path)["segmenter"] == "pre: "
    assert not list(tmp_path.glob("*" + TMP_SUFFIX))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 70000), st.integers(1, 70000)), max_size=5),
                max_size=6))
def test_compact_word_arrays_roundtrip(rows):
    """gaps/lengths/counts in the smallest dtypes rebuild the spans exactly."""
    starts, ends, rs = [], [], [0]
    for row in rows:
        pos = 0
        for gap, length in row:
            starts.append(pos + gap)
            ends.append(pos + gap + length)
            pos += gap + length
        rs.append(len(starts))
    words = WordSpans(np.array(starts, np.int32), np.array(ends, np.int32), np.array(rs, np.int64))
    gaps, lengths, counts = cache_mod._encode_words(words)
    assert same_words(cache_mod._decode_words(gaps, lengths, counts), words)
    big = max([0] + [g for row in rows for g, _ in row] + [n for row in rows for _, n in row])
    assert max(gaps.dtype.itemsize, lengths.dtype.itemsize) == (1 if big < 256 else 2 if
                                                                big < 65536 else 4)


def test_is_cache_file(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("中国\n")
    assert not is_cache_file(text)
    assert not is_cache_file(tmp_path / "missing")
    assert not is_cache_file(tmp_path)
    short = tmp_path / "short"
    short.write_bytes(cache_mod.MAGIC)
    assert not is_cache_file(short)


@pytest.fixture
def cache_file(tmp_path):
    data = ("中国 人民\n" * 200).encode("utf-8")
    lines = decode_lines(data)
    path = tmp_path / "c.wwmseg"
    write_cache(path, data, get_segmenter("pre").segment_batch(lines), segmenter="pre: ",
                source="s.txt")
    return path


def test_corrupt_caches_are_refused(cache_file, tmp_path):
    blob = cache_file.read_bytes()
    cases = {
        "truncated": blob[:-10],
        "flipped": blob[:-30] + bytes([blob[-30] ^ 0xFF]) + blob[-29:],
        "version": blob[:7] + b"\x09" + blob[8:],
        "magic": b"NOTACACH" + blob[8:],
        "header": blob[:16] + b"x" + blob[17:],
    }
    patterns = {
        "truncated": r"truncated \(in section 'counts'\)",
        "flipped": r"corrupt \(section 'counts' fails its CRC32",
        "version": r"format version 9, this wwm_fast reads version 1",
        "magic": r"not a wwm_fast segmentation cache",
        "header": r"corrupt \(unreadable header\)",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.wwmseg"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=patterns[name]):
            read_cache(path)


def test_write_cache_checks_line_count(tmp_path):
    words = get_segmenter("pre").segment_batch(["a b"])
    with pytest.raises(ValueError, match="words cover 1 lines but the data has 2"):
        write_cache(tmp_path / "x", b"a b\nc\n", words, segmenter="pre: ", source="x")
    assert not list(tmp_path.iterdir())


def test_cache_tokens_equal_input_tokens(vocab_file, tmp_path):
    """create tokenizes cache.data: it must give exactly the tokens of the input file."""
    src = tmp_path / "pd.txt"
    write_lines(src, [g.replace(" ", "") for g in gold_sentences()[:500]] + ["", "a\rb"])
    segment_files(str(src), "jieba", str(tmp_path / "out"), progress=False)
    shard = read_cache(tmp_path / "out" / "pd.txt.wwmseg")
    tok = FullTokenizer(vocab_file)
    enc = tok.encode_file_bytes(shard.data, source=shard.source, errors=shard.errors,
                                num_threads=1)
    ref = tok.encode_file(src)
    assert np.array_equal(enc.ids, ref.ids) and np.array_equal(enc.starts, ref.starts)
    result = align_words(enc, shard.words, tok.is_subword(enc.ids))
    assert result.n_fallback < 5


# -- segment_files ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards (one gzipped) of People's Daily with blank lines and odd whitespace."""
    folder = tmp_path_factory.mktemp("shards")
    raw = [g.replace(" ", "") for g in gold_sentences()[3000:4200]]
    raw[5] = "  " + raw[5] + "\u3000"
    raw[7] = "   "
    write_lines(folder / "a.txt", raw[:500] + [""] + raw[500:600])
    write_lines(folder / "b.txt.gz", raw[600:1000])
    write_lines(folder / "c.txt", raw[1000:])
    return folder


def test_segment_files_matches_segmenter(shards, ltp_model, tmp_path):
    spec = f"ltp:{ltp_model}"
    report = segment_files(str(shards / "*"), spec, str(tmp_path), num_workers=1,
                           progress=False, chunk_chars=5000)
    assert report.n_segmented == 3 and report.n_skipped == 0
    assert [os.path.basename(p) for p in report.outputs] == ["a.txt.wwmseg", "b.txt.wwmseg",
                                                             "c.txt.wwmseg"]
    seg = get_segmenter(spec)
    for name, out in zip(["a.txt", "b.txt.gz", "c.txt"], report.outputs):
        shard = read_cache(out)
        data = gzip.open(shards / name).read() if name.endswith(".gz") else (shards / name).read_bytes()
        assert shard.data == data
        assert shard.segmenter == seg.spec and shard.source == str(shards / name)
        lines = decode_lines(data)
        check_spans(lines, shard.words)
        assert same_words(shard.words, seg.segment_batch(lines))
    assert report.n_lines == sum(read_cache(p).n_lines for p in report.outputs)


def test_two_workers_equal_one(shards, tmp_path):
    one = segment_files(str(shards / "*"), "jieba", str(tmp_path / "one"), num_workers=1,
                        progress=False, chunk_chars=20000)
    two = segment_files(str(shards / "*"), "jieba", str(tmp_path / "two"), num_workers=2,
                        progress=False, chunk_chars=20000)
    for a, b in zip(one.outputs, two.outputs):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert one.n_words == two.n_words > 0


def test_rerun_skips_finished_shards(shards, tmp_path):
    out = tmp_path / "out"
    first = segment_files(str(shards / "*"), "pre", str(out), progress=False)
    mtimes = [os.stat(p).st_mtime_ns for p in first.outputs]
    again = segment_files(str(shards / "*"), "pre", str(out), progress=False)
    assert again.n_skipped == 3 and again.n_segmented == 0
    assert [os.stat(p).st_mtime_ns for p in again.outputs] == mtimes
    # same content, new mtime: recognised by hash
    copy = tmp_path / "in"
    copy.mkdir()
    for p in shards.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    segment_files(str(copy / "*"), "pre", str(tmp_path / "o2"), progress=False)
    os.utime(copy / "a.txt", ns=(1, 1))
    assert segment_files(str(copy / "*"), "pre", str(tmp_path / "o2"),
                         progress=False).n_skipped == 3
    # changed content, other segmenter, other decode policy, overwrite: segmented again
    (copy / "a.txt").write_bytes(b"new text\n")
    r = segment_files(str(copy / "*"), "pre", str(tmp_path / "o2"), progress=False)
    assert (r.n_segmented, r.n_skipped) == (1, 2)
    assert read_cache(tmp_path / "o2" / "a.txt.wwmseg").data == b"new text\n"
    assert segment_files(str(copy / "*"), "pre:\t", str(tmp_path / "o2"),
                         progress=False).n_segmented == 3
    assert segment_files(str(copy / "*"), "pre:\t", str(tmp_path / "o2"), errors="ignore",
                         progress=False).n_segmented == 3
    assert segment_files(str(copy / "*"), "pre:\t", str(tmp_path / "o2"), errors="ignore",
                         overwrite=True, progress=False).n_segmented == 3


def test_interrupted_run_leaves_no_partial_cache(shards, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = cache_mod.write_cache
    calls = []

    def dying_write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            # die half-way through writing the second cache
            with cache_mod.atomic_output(path, "wb") as f:
                f.write(b"WWMSEG\x00\x01 half")
                raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    from wwm_fast.segmentation import pipeline

    monkeypatch.setattr(pipeline, "write_cache", dying_write)
    with pytest.raises(KeyboardInterrupt):
        segment_files(str(shards / "*"), "pre", str(out), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt.wwmseg"]
    monkeypatch.setattr(pipeline, "write_cache", real)
    r = segment_files(str(shards / "*"), "pre", str(out), progress=False)
    assert (r.n_skipped, r.n_segmented) == (1, 2)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt.wwmseg", "b.txt.wwmseg",
                                                     "c.txt.wwmseg"]


def test_pre_with_segmented_files(tmp_path):
    gold = gold_sentences()[:300]
    raw = write_lines(tmp_path / "raw.txt", [g.replace(" ", "") for g in gold] + [""])
    seg = write_lines(tmp_path / "seg.txt", gold + [""])
    r = segment_files(raw, "pre", str(tmp_path / "out"), segmented_files=seg, progress=False)
    shard = read_cache(r.outputs[0])
    assert shard.data == Path(raw).read_bytes()
    assert shard.header["segmented_source"] == seg
    assert shard.words.row_splits[-1] == sum(len(g.split()) for g in gold)


# -- the command: bad input gives one clean error line and writes nothing ----------------------
def run_cli(capsys, *argv):
    code = cli_main(["segment", "--noprogress", *argv])
    return code, capsys.readouterr().err


def test_cli_segment(shards, tmp_path, capsys):
    code, err = run_cli(capsys, "--input_file", f"{shards}/a.txt,{shards}/c.txt", "--segmenter",
                        "jieba", "--output_dir", str(tmp_path), "--num_workers", "1")
    assert code == 0, err
    assert "segmented 2 file(s), skipped 0" in err and "jieba:hmm@" in err
    code, err = run_cli(capsys, "--input_file", f"{shards}/a.txt", "--segmenter", "jieba",
                        "--output_dir", str(tmp_path))
    assert code == 0 and "segmented 0 file(s), skipped 1 already done" in err


@pytest.mark.parametrize("case", ["missing_model", "corrupt_model", "not_installed",
                                  "bad_presegmented", "line_count", "invalid_utf8", "collision",
                                  "cache_as_input", "no_input"])
def test_cli_segment_bad_input(case, shards, tmp_path, capsys, monkeypatch, ltp_model):
    out = tmp_path / "out"
    raw = write_lines(tmp_path / "raw.txt", ["中国人民", "万岁"])
    args = ["--input_file", raw, "--output_dir", str(out), "--segmenter"]
    if case == "missing_model":
        args += [f"ltp:{tmp_path}/nope.bin"]
        expect = r"LTP model not found: '.*nope\.bin'"
    elif case == "corrupt_model":
        bad = tmp_path / "bad.bin"
        bad.write_bytes(Path(ltp_model).read_bytes()[:5000])
        args += [f"ltp:{bad}"]
        expect = r"LTP model file '.*bad\.bin' is not a valid LTP legacy model"
    elif case == "not_installed":
        import sys

        monkeypatch.setitem(sys.modules, "jieba", None)
        args += ["jieba"]
        expect = r"not installed: pip install 'wwm-fast\[jieba\]'"
    elif case == "bad_presegmented":
        seg = write_lines(tmp_path / "seg.txt", ["中国 人民", "万 万岁"])
        args += ["pre", "--segmented_file", seg]
        expect = r"seg\.txt: line 2: the pre-segmented words do not rebuild line 2 of .*raw\.txt"
    elif case == "line_count":
        seg = write_lines(tmp_path / "seg.txt", ["中国 人民"])
        args += ["pre", "--segmented_file", seg]
        expect = r"seg\.txt' has 1 lines but input file .*raw\.txt' has 2"
    elif case == "invalid_utf8":
        Path(raw).write_bytes(b"ok\n\xff\xfe bad\n")
        args += ["pre"]
        expect = r"raw\.txt: line 2: invalid UTF-8"
    elif case == "collision":
        sub = tmp_path / "sub"
        sub.mkdir()
        other = write_lines(sub / "raw.txt.gz", ["x"])
        args = ["--input_file", f"{raw},{other}", "--output_dir", str(out), "--segmenter", "pre"]
        expect = r"would both be cached as"
    elif case == "cache_as_input":
        segment_files(raw, "pre", str(tmp_path / "first"), progress=False)
        args = ["--input_file", str(tmp_path / "first" / "raw.txt.wwmseg"), "--output_dir",
                str(out), "--segmenter", "pre"]
        expect = r"is already a segmentation cache"
    else:
        args = ["--input_file", f"{tmp_path}/none*.txt", "--output_dir", str(out),
                "--segmenter", "pre"]
        expect = r"matches no file"
    code, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wwm-fast segment: error: "), err
    import re

    assert re.search(expect, lines[0]), lines[0]
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]
    assert not out.exists() or not list(out.glob("*" + TMP_SUFFIX))


def test_worker_errors_reach_the_caller(tmp_path):
    raw = write_lines(tmp_path / "raw.txt", ["中国人民"] * 50 + ["万岁"])
    seg = write_lines(tmp_path / "seg.txt", ["中国 人民"] * 50 + ["万 岁 岁"])
    with pytest.raises(ValueError, match=r"seg\.txt: line 51: the pre-segmented words"):
        segment_files(raw, "pre", str(tmp_path / "out"), segmented_files=seg, num_workers=2,
                      progress=False, chunk_chars=20)
    assert not (tmp_path / "out" / "raw.txt.wwmseg").exists()
