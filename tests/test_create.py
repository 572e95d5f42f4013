"""create_instances: compat == Google's script record by record, fast mode's statistics, bytes,
resumption and bad input. Every output is read back with TensorFlow's TFRecord reader and
run_pretraining.py's parse spec."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import wwm_fast
from wwm_fast.instances import build_instances, documents_from_encoding
from wwm_fast.masking import sample_masks
from wwm_fast.tfrecord import parse_example, read_records

from google_oracle import HFLMarkingTokenizer, run_google, tf_read

FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
            "masked_lm_weights", "next_sentence_labels")


# -- fixtures: slices of the real corpora ------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, people_daily_lines, people_daily_seg_lines, reviews_lines):
    """Plain-text slices as Google's script reads them, and a gold segmentation cache."""
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for name, lines in (("pd", people_daily_lines[:2400]), ("rv", reviews_lines[:1600]),
                        ("pd_seg", people_daily_seg_lines[:2400])):
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    from wwm_fast.segmentation import get_segmenter, write_cache
    raw = people_daily_lines[:2400]
    words = get_segmenter("pre").segment_batch(raw, segmented=people_daily_seg_lines[:2400])
    paths["pd_cache"] = folder / "pd.wwmseg"
    write_cache(paths["pd_cache"], paths["pd"].read_bytes(), words, segmenter="pre:gold",
                source=str(paths["pd"]))
    paths["gold"] = {r.strip(): s.split() for r, s in zip(raw, people_daily_seg_lines[:2400])}
    return paths


def _assert_same_records(ours: dict, theirs: dict, what: str):
    assert len(ours["input_ids"]) == len(theirs["input_ids"]), what
    for k in FEATURES:
        diff = np.flatnonzero(np.any(ours[k] != theirs[k], axis=1))
        assert not len(diff), f"{what}: feature {k} differs in {len(diff)} records, first {diff[0]}"


# -- compat mode == Google -----------------------------------------------------------------------------


@pytest.mark.parametrize("max_seq_length,max_pred", [(128, 20), (512, 77)], ids=["seq128", "seq512"])
@pytest.mark.parametrize("whole_word", [False, True], ids=["plain", "wwm##"])
def test_compat_equals_google(corpus, vocab_file, tmp_path, max_seq_length, max_pred, whole_word):
    """Two input files (documents continue across them) and two outputs (round-robin)."""
    inputs = [str(corpus["pd"]), str(corpus["rv"])]
    ours = [str(tmp_path / "ours-0.tfrecord"), str(tmp_path / "ours-1.tfrecord")]
    google = [str(tmp_path / "google-0.tfrecord"), str(tmp_path / "google-1.tfrecord")]
    # Google's flag on Chinese (## groups only) is written as asked, with an OutputWarning
    warns = (pytest.warns(wwm_fast.OutputWarning, match="## pieces only") if whole_word
             else contextlib.nullcontext())
    with warns:
        stats = wwm_fast.create_instances(
            inputs, vocab_file, ours, mode="compat", max_seq_length=max_seq_length,
            max_predictions_per_seq=max_pred, dupe_factor=2, do_whole_word_mask=whole_word,
            progress=False)
    n = run_google(inputs, google, vocab_file, max_seq_length=max_seq_length,
                   max_predictions_per_seq=max_pred, dupe_factor=2, whole_word=whole_word)
    assert stats.instances == n > 1000
    for a, b in zip(ours, google):
        _assert_same_records(tf_read(a, max_seq_length, max_pred),
                             tf_read(b, max_seq_length, max_pred), f"{a} vs {b}")


def test_compat_hfl_whole_word_equals_google_with_hfl_marks(corpus, vocab_file, tmp_path):
    """Segmenter words (gold PKU here, via a cache) + compat == Google's wwm on HFL-marked tokens."""
    ours = tmp_path / "ours.tfrecord"
    google = tmp_path / "google.tfrecord"
    stats = wwm_fast.create_instances(
        str(corpus["pd_cache"]), vocab_file, str(ours), mode="compat", dupe_factor=2,
        do_whole_word_mask=True, progress=False)
    assert stats.total["word_continuations"] > 0.3 * stats.total["corpus_tokens"]
    marking = HFLMarkingTokenizer(vocab_file, corpus["gold"])
    run_google([str(corpus["pd"])], [str(google)], vocab_file, max_seq_length=128,
               max_predictions_per_seq=20, dupe_factor=2, whole_word=True, tokenizer=marking)
    _assert_same_records(tf_read(ours, 128, 20), tf_read(google, 128, 20), "HFL wwm")


# -- output format ---------------------------------------------------------------------------------------


def test_gzip_output_parses_and_equals_plain(corpus, vocab_file, tmp_path):
    plain, gz = tmp_path / "plain.tfrecord", tmp_path / "gz.tfrecord"
    for out, gzip in ((plain, False), (gz, True)):
        wwm_fast.create_instances(str(corpus["rv"]), vocab_file, str(out), dupe_factor=1,
                                  gzip=gzip, progress=False)
    assert gz.read_bytes()[:2] == b"\x1f\x8b" and plain.read_bytes()[:2] != b"\x1f\x8b"
    _assert_same_records(tf_read(gz, 128, 20, "GZIP"), tf_read(plain, 128, 20), "gzip")
    assert [r for r in read_records(gz)] == [r for r in read_records(plain)]


def test_cython_reader_agrees_with_tensorflow(corpus, vocab_file, tmp_path):
    out = tmp_path / "x.tfrecord"
    wwm_fast.create_instances(str(corpus["pd"]), vocab_file, str(out), dupe_factor=1,
                              progress=False)
    ref = tf_read(out, 128, 20)
    ours = [parse_example(r) for r in read_records(out)]
    assert len(ours) == len(ref["input_ids"])
    for k in FEATURES:
        np.testing.assert_array_equal(np.stack([x[k] for x in ours]), ref[k])
    assert list(ours[0]) == list(FEATURES)  # features written in a fixed order


# -- fast mode -----------------------------------------------------------------------------------------


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shards(tmp_path_factory, people_daily_lines, reviews_lines):
    folder = tmp_path_factory.mktemp("shards")
    lines = people_daily_lines[:6000] + reviews_lines[:6000]
    paths = []
    for i in range(4):
        p = folder / f"part-{i}.txt"
        p.write_text("\n".join(lines[i * 3000:(i + 1) * 3000]) + "\n", encoding="utf-8")
        paths.append(str(p))
    return paths


def test_fast_bytes_identical_for_any_workers_and_runs(shards, vocab_file, tmp_path):
    digests = []
    for run, workers in (("a", 1), ("b", 2), ("c", 2)):
        stats = wwm_fast.create_instances(
            shards, vocab_file, str(tmp_path / run / "train.tfrecord"), dupe_factor=2,
            num_workers=workers, num_threads=1 if run != "c" else 2, progress=False)
        assert [Path(f).name for f in stats.output_files] == [
            f"train-{i:05d}-of-00004.tfrecord" for i in range(4)]
        digests.append([_sha(f) for f in stats.output_files])
    assert digests[0] == digests[1] == digests[2]


def test_fast_resume_skips_complete_shards(shards, vocab_file, tmp_path):
    out = str(tmp_path / "train.tfrecord")
    first = wwm_fast.create_instances(shards, vocab_file, out, dupe_factor=1, progress=False)
    victim = first.output_files[2]
    os.unlink(victim)
    again = wwm_fast.create_instances(shards, vocab_file, out, dupe_factor=1, progress=False)
    assert [s.skipped for s in again.shards] == [True, True, False, True]
    assert [_sha(f) for f in again.output_files] == [_sha(f) for f in first.output_files]
    changed = wwm_fast.create_instances(shards, vocab_file, out, dupe_factor=2, progress=False)
    assert not any(s.skipped for s in changed.shards)  # other flags: nothing is reused


def test_fast_killed_run_is_finished_by_rerun(shards, vocab_file, tmp_path):
    """SIGKILL mid-run: no partial file under a final name; a rerun gives a clean run's bytes."""
    clean = wwm_fast.create_instances(shards, vocab_file, str(tmp_path / "clean" / "t.tfrecord"),
                                      dupe_factor=3, progress=False)
    out = tmp_path / "killed" / "t.tfrecord"
    cmd = [sys.executable, "-m", "wwm_fast", "create", "--input_file", ",".join(shards),
           "--vocab_file", vocab_file, "--output_file", str(out), "--dupe_factor", "3",
           "--num_workers", "1", "--noprogress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    first_stats = str(out.parent / "t-00000-of-00004.tfrecord.stats.json")
    while time.time() < deadline and not os.path.exists(first_stats) and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the kill really landed mid-run: the process was still running (killed by the signal, not
    # finished), one shard was complete and at least one was not
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    complete = sorted(p.name for p in out.parent.glob("t-*-of-00004.tfrecord.stats.json"))
    assert 1 <= len(complete) < 4, complete
    finals = sorted(p for p in out.parent.iterdir() if not p.name.startswith("."))
    for p in finals:  # whatever exists under a final name is complete
        if p.name.endswith(".tfrecord"):
            assert sum(1 for _ in read_records(p)) > 0
    rerun = wwm_fast.create_instances(shards, vocab_file, str(out), dupe_factor=3, progress=False)
    assert [_sha(f) for f in rerun.output_files] == [_sha(f) for f in clean.output_files]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # temporaries gone


def test_outputs_one_per_shard_or_error(shards, vocab_file, tmp_path):
    names = [str(tmp_path / f"o{i}.tfrecord") for i in range(4)]
    stats = wwm_fast.create_instances(shards, vocab_file, names, dupe_factor=1, progress=False)
    assert stats.output_files == names
    with pytest.raises(ValueError, match="one output file per input shard.*got 2"):
        wwm_fast.create_instances(shards, vocab_file, names[:2], dupe_factor=1, progress=False)


def _mode_stats(corpus_files, vocab_file, out, mode, cache=None):
    stats = wwm_fast.create_instances(cache or corpus_files, vocab_file, str(out), mode=mode,
                                      dupe_factor=3, do_whole_word_mask=True, progress=False)
    recs = {k: np.concatenate([tf_read(f, 128, 20)[k] for f in stats.output_files])
            for k in FEATURES}
    return stats, recs


def test_fast_statistics_match_compat(corpus, vocab_file, tmp_path):
    """Same corpus, same flags: masked fraction, 80/10/10, NSP, short sequences, word sizes."""
    cache = str(corpus["pd_cache"])
    fast, f = _mode_stats(None, vocab_file, tmp_path / "fast.tfrecord", "fast", cache)
    compat, c = _mode_stats(None, vocab_file, tmp_path / "compat.tfrecord", "compat", cache)
    ft, ct = fast.total, compat.total
    # masked fraction of the instance tokens
    assert abs(ft["masked_fraction"] - ct["masked_fraction"]) < 0.003
    assert 0.13 < ft["masked_fraction"] < 0.16
    # 80/10/10, per token: chi-square against the expected proportions
    mask_id = 103
    for recs in (f, c):
        w = recs["masked_lm_weights"] > 0
        rows = np.nonzero(w)[0]
        shown = recs["input_ids"][rows, recs["masked_lm_positions"][w]]
        label = recs["masked_lm_ids"][w]
        counts = np.array([(shown == mask_id).sum(), ((shown == label) & (shown != mask_id)).sum(),
                           ((shown != label) & (shown != mask_id)).sum()])
        expected = counts.sum() * np.array([0.8, 0.1, 0.1])
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert np.exp(-chi2 / 2) > 1e-3, counts  # chi-square survival function, 2 dof
    # next sentence: Google's rate (single-sentence chunks are always random) within 2 points
    assert abs(ft["random_next_fraction"] - ct["random_next_fraction"]) < 0.02
    # short sequences: the share of instances well below the maximum length
    flen, clen = f["input_mask"].sum(1), c["input_mask"].sum(1)
    assert abs((flen < 64).mean() - (clen < 64).mean()) < 0.02
    assert abs(flen.mean() - clen.mean()) < 2.0
    # masked whole words by size
    fh = np.array(ft["masked_group_hist"], float)
    ch = np.array(ct["masked_group_hist"], float)
    assert np.abs(fh / fh.sum() - ch / ch.sum()).max() < 0.01
    assert fh[2] / fh.sum() > 0.2  # Chinese words: many two-character groups


def test_fast_masks_whole_words_and_never_specials(corpus, vocab_file):
    tok = wwm_fast.FullTokenizer(vocab_file)
    from wwm_fast.segmentation import read_cache
    shard = read_cache(corpus["pd_cache"])
    enc = tok.encode_file_bytes(shard.data, source="pd", num_threads=1)
    ws = wwm_fast.align_words(enc, shard.words, tok.is_subword(enc.ids)).word_start
    docs = documents_from_encoding(enc, ws)
    inst = build_instances(docs, tok, mode="fast", dupe_factor=2)
    inst = sample_masks(docs, inst, tok, do_whole_word_mask=True)
    n_multi = 0
    for i in range(inst.n):
        a0, al, b0, bl = inst.a_start[i], inst.a_len[i], inst.b_start[i], inst.b_len[i]
        src = np.concatenate([[-1], np.arange(a0, a0 + al), [-1], np.arange(b0, b0 + bl), [-1]])
        pos = inst.pred_positions[inst.pred_splits[i]:inst.pred_splits[i + 1]]
        assert len(pos) <= 20 and np.all(np.diff(pos) > 0)
        assert np.all(src[pos] >= 0), "a special token was masked"
        masked = np.zeros(len(src), bool)
        masked[pos] = True
        # group id per position: a new group at each word start and at each segment start
        starts = np.ones(len(src), bool)
        inner = src >= 0
        starts[inner] = ws[src[inner]] == 1
        starts[1] = starts[al + 2] = True
        group = np.cumsum(starts)
        for g in np.unique(group[pos]):
            members = (group == g) & inner
            assert masked[members].all(), f"instance {i}: a word is masked partly"
            n_multi += members.sum() > 1
        labels = inst.pred_labels[inst.pred_splits[i]:inst.pred_splits[i + 1]]
        np.testing.assert_array_equal(labels, docs.ids[src[pos]])
    assert n_multi > 1000


def test_roberta_style_single_segments(corpus, vocab_file, tmp_path):
    out = tmp_path / "r.tfrecord"
    stats = wwm_fast.create_instances(str(corpus["pd_cache"]), vocab_file, str(out),
                                      max_seq_length=512, max_predictions_per_seq=77,
                                      next_sentence=False, dupe_factor=1, progress=False)
    recs = tf_read(out, 512, 77)
    assert stats.instances == len(recs["input_ids"]) > 100
    assert not recs["segment_ids"].any() and not recs["next_sentence_labels"].any()
    lengths = recs["input_mask"].sum(1)
    last = recs["input_ids"][np.arange(len(lengths)), lengths - 1]
    assert (last == 102).all() and (recs["input_ids"][:, 0] == 101).all()
    assert ((recs["input_ids"] == 102).sum(1) == 1).all()  # one [SEP]: a single segment
    # consecutive sentences fill the sequence up to the end of each document (PD documents average
    # ~620 tokens, so about half the instances are a full 512 and the rest a document's tail)
    assert (lengths == 512).mean() > 0.35
    assert stats.total["instance_tokens"] > 0.95 * stats.total["corpus_tokens"]
    with pytest.raises(ValueError, match="next_sentence=False.*mode='fast'"):
        wwm_fast.create_instances(str(corpus["pd"]), vocab_file, str(out), mode="compat",
                                  next_sentence=False, progress=False)


def test_stats_json_beside_each_output(corpus, vocab_file, tmp_path):
    out = tmp_path / "s.tfrecord"
    stats = wwm_fast.create_instances(str(corpus["pd_cache"]), vocab_file, str(out),
                                      dupe_factor=1, progress=False)
    saved = json.loads((tmp_path / "s.tfrecord.stats.json").read_text())
    assert saved["instances"] == stats.instances == sum(1 for _ in read_records(out))
    assert saved["output_bytes"] == out.stat().st_size
    assert saved["unk_rate"] == pytest.approx(saved["unk_tokens"] / saved["corpus_tokens"])
    for key in ("masked_tokens", "masked_group_hist", "random_next_fraction", "seconds"):
        assert key in saved
    assert "wrote" in stats.summary()


# -- bad input -------------------------------------------------------------------------------------------


def _no_outputs(folder: Path):
    return not [p for p in folder.iterdir() if p.name.endswith(".tfrecord") or
                p.name.startswith(".")] if folder.exists() else True


def test_invalid_utf8_names_file_and_line(vocab_file, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("第一句。\n第二句。\n".encode() + b"\xe4\xb8 broken\n")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"bad\.txt: line 3: invalid UTF-8"):
        wwm_fast.create_instances(str(bad), vocab_file, str(out / "x.tfrecord"), progress=False)
    assert _no_outputs(out)
    stats = wwm_fast.create_instances(str(bad), vocab_file, str(out / "x.tfrecord"),
                                      errors="ignore", dupe_factor=1, progress=False)
    assert stats.instances >= 1


def test_empty_corpus(vocab_file, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\x01\n", encoding="utf-8")
    for mode in ("fast", "compat"):
        with pytest.raises(ValueError, match="empty corpus"):
            wwm_fast.create_instances(str(empty), vocab_file, str(tmp_path / "o" / "x.tfrecord"),
                                      mode=mode, progress=False)
        assert _no_outputs(tmp_path / "o")


def test_one_token_document_still_gives_an_instance(vocab_file, tmp_path):
    """A document too short to split: Google pairs it with a random next, as we do."""
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("好\n", encoding="utf-8")
    for mode in ("fast", "compat"):
        out = tmp_path / f"{mode}.tfrecord"
        stats = wwm_fast.create_instances(str(tiny), vocab_file, str(out), mode=mode,
                                          dupe_factor=1, progress=False)
        recs = tf_read(out, 128, 20)
        assert stats.instances == 1
        ids = recs["input_ids"][0].copy()
        n = int(recs["masked_lm_weights"][0].sum())
        assert n == 1  # max(1, round(5 * 0.15))
        ids[recs["masked_lm_positions"][0][:n]] = recs["masked_lm_ids"][0][:n]
        assert ids[:6].tolist() == [101, 1962, 102, 1962, 102, 0]


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_seq_length=4), "max_seq_length must be >= 5"),
    (dict(max_predictions_per_seq=0), "max_predictions_per_seq must be >= 1"),
    (dict(masked_lm_prob=1.5), r"masked_lm_prob must be in \(0, 1\)"),
    (dict(dupe_factor=0), "dupe_factor must be >= 1"),
    (dict(mode="slow"), r"mode must be one of \['fast', 'compat'\]"),
    (dict(errors="replace"), "errors must be one of"),
    (dict(num_workers=0), r"num_workers must be in \[1, 256\], got 0"),
    # the documented upper bounds (wwm_fast/_limits.py), before any work
    (dict(max_seq_length=8193), r"max_seq_length must be in \[5, 8192\], got 8193"),
    (dict(max_seq_length=3_000_000_000), r"max_seq_length must be in \[5, 8192\]"),
    (dict(dupe_factor=101), r"dupe_factor must be in \[1, 100\], got 101"),
    (dict(random_seed=-1), r"random_seed must be in \[0, 9223372036854775807\], got -1"),
    (dict(random_seed=2 ** 64), r"random_seed must be in \[0, 9223372036854775807\]"),
    (dict(num_threads=257), r"num_threads must be -1 or in \[1, 256\], got 257"),
    (dict(num_threads=2 ** 31), r"num_threads must be -1 or in \[1, 256\]"),
])
def test_bad_flags(corpus, vocab_file, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        wwm_fast.create_instances(str(corpus["rv"]), vocab_file, str(tmp_path / "x.tfrecord"),
                                  progress=False, **kwargs)
    assert _no_outputs(tmp_path)


def test_missing_inputs_vocab_and_unwritable_output(corpus, vocab_file, tmp_path):
    with pytest.raises(ValueError, match="matches no file"):
        wwm_fast.create_instances(str(tmp_path / "nope*.txt"), vocab_file,
                                  str(tmp_path / "x.tfrecord"), progress=False)
    with pytest.raises(ValueError, match="vocab_file not found"):
        wwm_fast.create_instances(str(corpus["rv"]), str(tmp_path / "vocab.txt"),
                                  str(tmp_path / "x.tfrecord"), progress=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:  # root writes anywhere: then use a read-only file system instead
        target = locked if not os.access(locked, os.W_OK) else Path("/proc/wwm-fast-test")
        with pytest.raises(ValueError, match="cannot (write output file|create output folder)"):
            wwm_fast.create_instances(str(corpus["rv"]), vocab_file, str(target / "x.tfrecord"),
                                      dupe_factor=1, progress=False)
    finally:
        locked.chmod(0o700)
    with pytest.raises(ValueError, match="is a directory"):
        wwm_fast.create_instances(str(corpus["rv"]), vocab_file, str(tmp_path), progress=False)


def test_output_under_a_file_is_a_clear_error(corpus, vocab_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot create output folder"):
        wwm_fast.create_instances(str(corpus["rv"]), vocab_file, str(blocker / "x.tfrecord"),
                                  dupe_factor=1, progress=False)


def test_cli_create_and_error_line(corpus, vocab_file, tmp_path, capsys):
    from wwm_fast.cli import main

    out = tmp_path / "cli.tfrecord"
    assert main(["create", "--input_file", str(corpus["rv"]), "--vocab_file", vocab_file,
                 "--output_file", str(out), "--dupe_factor=1", "--do_whole_word_mask",
                 "--noprogress", "--stats_file", str(tmp_path / "s.json")]) == 0
    assert "wrote" in capsys.readouterr().err
    assert json.loads((tmp_path / "s.json").read_text())["total"]["instances"] > 0
    assert main(["create", "--input_file", str(tmp_path / "none.txt"), "--vocab_file",
                 vocab_file, "--output_file", str(out), "--noprogress"]) == 2
    assert "matches no file" in capsys.readouterr().err
