"""Fast mode's n-gram whole-word masking (``create --ngram_masking``, issue 15 part 1).

* The native sampler equals an independent Python implementation of the README's algorithm
  (tests/ngram_reference.py) instance by instance, for several tables, with and without whole
  words, at seq 128 and 512.
* On zh_all (People's Daily with its gold words + reviews segmented by jieba): the mask budget is
  met as by the whole-word sampler, the sizes drawn follow the table and the 80/10/10 choice
  its proportions within binomial bounds, every whole word is masked entirely or not at all and
  no special token is masked; the output bytes do not depend on workers or threads.
* The stats JSON and ``inspect --stats`` report the n-gram histograms; bad tables and flag
  combinations are clear errors that write nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

import wwm_fast
from wwm_fast import _instances, _masking
from wwm_fast.cli import main
from wwm_fast.instances import build_instances, documents_from_encoding
from wwm_fast.masking import MACBERT_NGRAM_PROBS, MAX_NGRAM_TABLE_SIZE, sample_masks

import native_inputs as ni
import ngram_reference as ref

SEQ, PRED, PROB = 128, 20, 0.15
Z = 4.5  # binomial bounds: |count - N p| <= Z sqrt(N p (1 - p))


# -- fixtures: zh_all with whole words -------------------------------------------------------------


@pytest.fixture(scope="module")
def zh_all(tmp_path_factory, people_daily_lines, people_daily_seg_lines, reviews_lines):
    """zh_all as two segmentation caches: People's Daily with its gold words, the reviews
    segmented by jieba (about 15 CPU seconds)."""
    pytest.importorskip("jieba")
    from wwm_fast.segmentation import get_segmenter, segment_files, write_cache

    folder = tmp_path_factory.mktemp("zh_all")
    pd = folder / "people_daily_199801.txt"
    pd.write_text("\n".join(people_daily_lines) + "\n", encoding="utf-8")
    words = get_segmenter("pre").segment_batch(people_daily_lines,
                                               segmented=people_daily_seg_lines)
    write_cache(folder / "pd.wwmseg", pd.read_bytes(), words, segmenter="pre:gold",
                source=str(pd))
    rv = folder / "reviews.txt"
    rv.write_text("\n".join(reviews_lines) + "\n", encoding="utf-8")
    report = segment_files(str(rv), "jieba", str(folder / "seg"), num_workers=1, progress=False)
    return [str(folder / "pd.wwmseg"), report.outputs[0]]


@pytest.fixture(scope="module")
def tok(vocab_file):
    return wwm_fast.FullTokenizer(vocab_file)


@pytest.fixture(scope="module")
def shards(zh_all, tok):
    """(documents, instances) of each zh_all shard, as create builds them (dupe 2)."""
    from wwm_fast.segmentation import read_cache

    out = []
    for index, path in enumerate(zh_all):
        cache = read_cache(path)
        enc = tok.encode_file_bytes(cache.data, source=path, num_threads=1, with_offsets=True)
        ws = wwm_fast.align_words(enc, cache.words, tok.is_subword(enc.ids)).word_start
        docs = documents_from_encoding(enc, ws)
        inst = build_instances(docs, tok, mode="fast", shard=index, dupe_factor=2)
        out.append((docs, inst))
    return out


@pytest.fixture(scope="module")
def masked(shards, tok):
    """Each shard's instances with MacBERT's n-gram masking, and with whole-word masking."""
    return [(sample_masks(d, i, tok, ngram_probs=MACBERT_NGRAM_PROBS),
             sample_masks(d, i, tok)) for d, i in shards]


def _preds(inst, i):
    s = slice(inst.pred_splits[i], inst.pred_splits[i + 1])
    return inst.pred_positions[s], inst.pred_input_ids[s], inst.pred_labels[s]


# -- the algorithm, exactly ------------------------------------------------------------------------


def test_reference_rng_is_the_native_stream():
    for key in (0, 1, 12345, 2**64 - 1, 0x9E3779B97F4A7C15):
        for below in (0, 1, 7, 21128, 2**63 + 5):
            r = ref.KeyedRng(key)
            want = [r.randbelow(below) if below else r.next() for _ in range(50)]
            assert _instances._py_keyed_rng(key, 50, below) == want


def _check_against_reference(docs, inst, out, tok, probs, whole_word, pred, prob, sample):
    sp = wwm_fast.instances.special_ids(tok)
    masked = np.zeros(MAX_NGRAM_TABLE_SIZE + 1, np.int64)
    drawn = np.zeros_like(masked)
    for i in sample:
        a0, al, b0, bl = (int(x[i]) for x in (inst.a_start, inst.a_len, inst.b_start, inst.b_len))
        want = ref.sample_instance(docs.ids[a0:a0 + al], docs.word_start[a0:a0 + al],
                                   docs.ids[b0:b0 + bl], docs.word_start[b0:b0 + bl],
                                   int(inst.key[i]), probs, pred, prob, sp["mask_id"],
                                   sp["rand_ids"], whole_word)
        pos, shown, labels = _preds(out, i)
        assert pos.tolist() == want["positions"], i
        assert shown.tolist() == want["input_ids"], i
        assert labels.tolist() == want["labels"], i
        for n, _, words, _ in want["ngrams"]:
            drawn[n] += 1
            masked[words] += 1
    if len(sample) == inst.n:  # the whole set: the native histograms are these
        np.testing.assert_array_equal(out.ngram_hist, masked)
        np.testing.assert_array_equal(out.ngram_drawn_hist, drawn)
    assert masked.sum() > 0


@pytest.mark.parametrize("probs,whole_word", [
    (MACBERT_NGRAM_PROBS, True),
    ((0.0, 0.0, 0.0, 1.0), True),  # always 4 words: shortened at segment ends and the budget
    ((1.0,), True),  # single whole words
    ((0.1,) * 10, True),
    ((0.5, 0.0, 0.5), True),
    (MACBERT_NGRAM_PROBS, False),  # n-grams of tokens
])
def test_native_equals_reference(shards, tok, probs, whole_word):
    docs, inst = shards[0]
    out = sample_masks(docs, inst, tok, ngram_probs=probs, do_whole_word_mask=whole_word)
    rng = np.random.default_rng(7)
    sample = np.sort(rng.choice(inst.n, 1500, replace=False))
    _check_against_reference(docs, inst, out, tok, probs, whole_word, PRED, PROB, sample)


def test_native_equals_reference_whole_set_seq_512(shards, tok):
    """Long single segments and a larger budget (77), every instance of a People's Daily slice,
    the histograms included."""
    docs, _ = shards[0]
    n_sent = int(docs.doc_splits[40])
    small = wwm_fast.Documents(docs.ids[:docs.sent_splits[n_sent]],
                               docs.word_start[:docs.sent_splits[n_sent]],
                               docs.sent_splits[:n_sent + 1], docs.doc_splits[:41])
    for next_sentence in (True, False):
        inst = build_instances(small, tok, mode="fast", max_seq_length=512,
                               max_predictions_per_seq=77, dupe_factor=2,
                               next_sentence=next_sentence)
        out = sample_masks(small, inst, tok, max_seq_length=512, max_predictions_per_seq=77,
                           ngram_probs="0.4,0.3,0.2,0.1")
        _check_against_reference(small, inst, out, tok, MACBERT_NGRAM_PROBS, True, 77, PROB,
                                 range(inst.n))


def test_ngrams_never_cross_sep():
    """Two one-token words in A and two in B, every draw 4 words, budget for all: an n-gram grows
    to its segment's end and stops there, so each segment is one 2-gram, whatever the RNG."""
    c = ni.corpus(n_ids=8, sentence=4, per_doc=2)
    c["word_start"][:] = 1
    for key in range(50):
        inst = ni.instances([0], [2], [4], [2])
        inst["key"] = np.array([key], np.uint64)
        out = _masking.sample_ngram_masks(c, inst, 16, 16, 0.99, True,
                                          np.array([0, 0, 0, 1.0]), ni.MASK, ni.RAND_IDS, 1)
        assert out["pred_positions"].tolist() == [1, 2, 4, 5]  # [CLS] a a [SEP] b b [SEP]
        assert out["ngram_hist"].tolist()[:5] == [0, 0, 2, 0, 0]
        assert out["ngram_drawn_hist"].tolist()[:5] == [0, 0, 0, 0, 2]


# -- zh_all: the distributions ---------------------------------------------------------------------


def _budgets(inst):
    length = inst.a_len + inst.b_len + np.where(inst.b_len > 0, 3, 2)
    return np.minimum(PRED, np.maximum(1, np.round(length * PROB).astype(np.int64))), length


def _within(count, n, p, what):
    sd = np.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= Z * sd, f"{what}: {count} of {n}, expected {n * p:.0f} +- {sd:.0f}"


def test_zh_all_mask_rate_histogram_and_80_10_10(masked, tok, capsys):
    sp = wwm_fast.instances.special_ids(tok)
    v = len(sp["rand_ids"])
    tokens = budget_sum = n_ngram = n_wwm = 0
    drawn = np.zeros(MAX_NGRAM_TABLE_SIZE + 1, np.int64)
    hist = np.zeros_like(drawn)
    shown_counts = np.zeros(3, np.int64)
    for ng, wwm in masked:
        budget, length = _budgets(ng)
        counts = np.diff(ng.pred_splits)
        assert (counts <= budget).all()  # never over the budget (<= max_predictions_per_seq)
        tokens += int(length.sum())
        budget_sum += int(budget.sum())
        n_ngram += int(counts.sum())
        n_wwm += len(wwm.pred_positions)
        drawn += ng.ngram_drawn_hist
        hist += ng.ngram_hist
        mask = ng.pred_input_ids == sp["mask_id"]
        keep = ~mask & (ng.pred_input_ids == ng.pred_labels)
        shown_counts += [mask.sum(), keep.sum(), (~mask & ~keep).sum()]
        sizes = np.arange(len(ng.ngram_hist))
        assert (sizes * ng.ngram_hist).sum() == ng.group_hist.sum()  # words in n-grams
    # mask rate: the budget (15% of the tokens, at most 20) is filled as well as by whole words
    assert n_ngram >= 0.99 * budget_sum
    assert abs(n_ngram - n_wwm) <= 0.002 * n_wwm
    assert 0.14 < n_ngram / tokens < 0.16
    # the sizes drawn follow the table (one draw per masked n-gram, never depending on its value)
    n = int(drawn.sum())
    assert n > 200_000
    for k, p in enumerate(MACBERT_NGRAM_PROBS, 1):
        _within(int(drawn[k]), n, p, f"{k}-grams drawn")
    assert not drawn[5:].any() and hist.sum() == n
    # masked n-grams: shortened only where the n-gram does not fit (segment, neighbours, budget)
    share = hist / n
    assert share[1] > MACBERT_NGRAM_PROBS[0] and 0 < share[4] < MACBERT_NGRAM_PROBS[3]
    assert (np.arange(len(hist)) * hist).sum() < (np.arange(len(drawn)) * drawn).sum()
    # 80/10/10 per token; a random id is [MASK] or the label itself with probability 1/V each
    m = int(shown_counts.sum())
    for count, p, what in zip(shown_counts, (0.8 + 0.1 / v, 0.1 + 0.1 / v, 0.1 * (1 - 2 / v)),
                              ("[MASK]", "kept", "random")):
        _within(int(count), m, p, what)
    with capsys.disabled():
        print(f"\nzh_all n-gram masking: {n_ngram:,} of {tokens:,} tokens "
              f"({100 * n_ngram / tokens:.2f}%; whole words {100 * n_wwm / tokens:.2f}%), "
              f"{n:,} n-grams; drawn {np.round(100 * drawn[1:5] / n, 2).tolist()}%, masked "
              f"{np.round(100 * share[1:5], 2).tolist()}%; shown "
              f"{np.round(100 * shown_counts / m, 2).tolist()}%")


def test_zh_all_whole_words_intact(shards, masked):
    """Every whole word (segmenter words and ## groups; the first token of a segment starts
    one) is masked entirely or not at all; no [CLS]/[SEP] is masked; labels are the corpus ids."""
    for (docs, inst), (ng, _) in zip(shards, masked):
        for lo in range(0, inst.n, 20_000):
            rows = np.arange(lo, min(inst.n, lo + 20_000))
            a0, al = inst.a_start[rows, None], inst.a_len[rows, None]
            b0, bl = inst.b_start[rows, None], inst.b_len[rows, None]
            p = np.arange(SEQ)[None, :]
            in_a = (p >= 1) & (p <= al)
            in_b = (p >= al + 2) & (p < al + 2 + bl)
            src = np.where(in_a, a0 + p - 1, np.where(in_b, b0 + p - al - 2, -1))
            first = (p == 1) | (p == al + 2)
            cont = (src >= 0) & ~first & (docs.word_start[np.maximum(src, 0)] == 0)
            is_masked = np.zeros((len(rows), SEQ), bool)
            r = np.repeat(np.arange(len(rows)), np.diff(ng.pred_splits[lo:rows[-1] + 2]))
            pos = ng.pred_positions[ng.pred_splits[lo]:ng.pred_splits[rows[-1] + 1]]
            labels = ng.pred_labels[ng.pred_splits[lo]:ng.pred_splits[rows[-1] + 1]]
            is_masked[r, pos] = True
            assert (src[r, pos] >= 0).all(), "a special token was masked"
            np.testing.assert_array_equal(labels, docs.ids[src[r, pos]])
            # a continuation token is masked exactly when the token before it is
            split = cont[:, 1:] & (is_masked[:, 1:] != is_masked[:, :-1])
            assert not split.any(), f"a word masked partly: instance {lo + split.any(1).argmax()}"
        assert (docs.word_start == 0).sum() > 0.3 * len(docs.ids)  # real multi-token words


def test_zh_all_sampler_independent_of_threads(shards, masked, tok):
    docs, inst = shards[1]
    assert inst.n > 3 * 4096  # so that three threads really share the work
    one = masked[1][0]
    for threads in (2, 3):
        other = sample_masks(docs, inst, tok, ngram_probs=MACBERT_NGRAM_PROBS,
                             num_threads=threads)
        for f in ("pred_splits", "pred_positions", "pred_input_ids", "pred_labels", "group_hist",
                  "ngram_hist", "ngram_drawn_hist"):
            np.testing.assert_array_equal(getattr(one, f), getattr(other, f), err_msg=f)


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_zh_all_output_bytes_independent_of_workers_and_threads(zh_all, vocab_file, tmp_path):
    digests = []
    for workers, threads in ((1, 1), (2, 1), (1, 2)):
        out = tmp_path / f"w{workers}t{threads}" / "train.tfrecord"
        stats = wwm_fast.create_instances(zh_all, vocab_file, str(out), dupe_factor=1,
                                          do_whole_word_mask=True, ngram_masking=True,
                                          num_workers=workers, num_threads=threads,
                                          progress=False)
        digests.append([_sha(f) for f in stats.output_files])
    assert digests[0] == digests[1] == digests[2]
    assert len(digests[0]) == 2


# -- stats JSON and inspect --stats ----------------------------------------------------------------


@pytest.fixture(scope="module")
def pd_cache(people_daily_lines, people_daily_seg_lines, tmp_path_factory):
    from wwm_fast.segmentation import get_segmenter, write_cache

    folder = tmp_path_factory.mktemp("pd")
    lines = people_daily_lines[:3000]
    text = folder / "pd.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words = get_segmenter("pre").segment_batch(lines, segmented=people_daily_seg_lines[:3000])
    write_cache(folder / "pd.wwmseg", text.read_bytes(), words, segmenter="pre:gold",
                source=str(text))
    return str(folder / "pd.wwmseg")


def test_stats_json_and_inspect_report_the_ngram_histogram(pd_cache, vocab_file, tmp_path,
                                                           capsys):
    out = tmp_path / "ng.tfrecord"
    stats = wwm_fast.create_instances(pd_cache, vocab_file, str(out), dupe_factor=2,
                                      do_whole_word_mask=True, ngram_masking=True,
                                      ngram_probs="0.5,0.5", progress=False)
    saved = json.loads((tmp_path / "ng.tfrecord.stats.json").read_text())
    t = stats.total
    assert saved["masked_ngram_hist"] == t["masked_ngram_hist"]
    assert len(t["ngram_drawn_hist"]) == MAX_NGRAM_TABLE_SIZE + 1
    assert sum(t["ngram_drawn_hist"][1:3]) == sum(t["masked_ngram_hist"]) > 1000
    assert not any(t["ngram_drawn_hist"][3:])
    assert "masked n-grams by size in words: 1: " in stats.summary()
    # inspect: the creator's histograms from the stats JSON, the span lengths from the records
    assert main(["inspect", str(out), "--stats", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["creator_stats"]["stats_files"] == 1
    assert s["creator_stats"]["masked_ngram_hist"] == t["masked_ngram_hist"]
    assert s["creator_stats"]["ngram_drawn_hist"] == t["ngram_drawn_hist"]
    spans = np.array(s["masked_span_hist"])
    assert (np.arange(len(spans)) * spans).sum() == s["predictions"] == t["masked_tokens"]
    assert main(["inspect", str(out), "--stats"]) == 0
    text = capsys.readouterr().out
    assert "masked n-grams by size in words (stats JSON of 1 of 1 file(s)): 1: " in text
    assert "runs of consecutive masked tokens by length: 1: " in text
    # a copy without its stats JSON, and one whose stats JSON describes another file
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out, alone / "x.tfrecord")
    shutil.copy(tmp_path / "ng.tfrecord.stats.json", alone / "y.tfrecord.stats.json")
    (alone / "y.tfrecord").write_bytes(out.read_bytes()[:-1] + b"\0")
    assert main(["inspect", str(alone / "x.tfrecord"), "--stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["creator_stats"] == {"stats_files": 0}
    assert main(["inspect", str(alone / "x.tfrecord"), "--stats"]) == 0
    assert "no wwm-fast stats JSON beside the files" in capsys.readouterr().out
    # a stats JSON with something else than counts in a histogram: that histogram is left out
    saved["masked_ngram_hist"] = [None, "7", 2.5]
    saved["ngram_drawn_hist"] = [0, -1]
    shutil.copy(out, alone / "z.tfrecord")
    (alone / "z.tfrecord.stats.json").write_text(json.dumps(saved))
    assert main(["inspect", str(alone / "z.tfrecord"), "--stats", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["creator_stats"]
    assert found["stats_files"] == 1 and "masked_group_hist" in found
    assert "masked_ngram_hist" not in found and "ngram_drawn_hist" not in found
    saved["masked_ngram_hist"] = [0, 3, 1]  # one good, one bad
    (alone / "z.tfrecord.stats.json").write_text(json.dumps(saved))
    assert main(["inspect", str(alone / "z.tfrecord"), "--stats"]) == 0
    text = capsys.readouterr().out
    assert "masked n-grams by size in words (stats JSON of 1 of 1 file(s)): 1: 75.0%, 2: 25.0%\n" \
        in text


def test_without_ngram_masking_the_stats_have_no_ngram_fields(pd_cache, vocab_file, tmp_path):
    out = tmp_path / "w.tfrecord"
    stats = wwm_fast.create_instances(pd_cache, vocab_file, str(out), dupe_factor=1,
                                      do_whole_word_mask=True, progress=False)
    saved = json.loads((tmp_path / "w.tfrecord.stats.json").read_text())
    assert "masked_ngram_hist" not in saved and "ngram_drawn_hist" not in saved
    assert "masked_ngram_hist" not in stats.total and "n-grams" not in stats.summary()


def test_span_histogram_of_unsorted_positions():
    from wwm_fast.commands.inspect import masked_span_hist

    pos = np.array([[5, 3, 4, 9, 0], [1, 2, 3, 7, 8], [0, 0, 0, 0, 0]])
    used = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    assert masked_span_hist(pos, used).tolist()[:5] == [0, 1, 1, 2, 0]  # 3-5, 9 | 1-3, 7-8


# -- bad input -------------------------------------------------------------------------------------


def _nothing_written(folder):
    return not any(folder.iterdir()) if folder.exists() else True


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(ngram_probs="0.5,0.6"), ValueError, r"ngram_probs 0\.5,0\.6: probabilities must sum "
                                              r"to 1, they sum to 1\.1"),
    (dict(ngram_probs="0.4,0.3,0.2"), ValueError, "sum to 1, they sum to 0.9"),
    (dict(ngram_probs="1.2,-0.2"), ValueError, "probability of 2-grams must be a finite number "
                                               ">= 0, got -0.2"),
    (dict(ngram_probs="nan,1"), ValueError, "1-grams must be a finite number >= 0, got nan"),
    (dict(ngram_probs=""), ValueError, "ngram_probs is empty"),
    (dict(ngram_probs=[]), ValueError, "ngram_probs is empty"),
    (dict(ngram_probs=",".join(["0.0625"] * 16)), ValueError,
     "16 entries, at most 10"),
    (dict(ngram_probs="0.5,half"), ValueError, r"entry 2 \('half'\) is not a number"),
    (dict(ngram_probs=[0.5, "0.5"]), TypeError, "entry 2 must be a number"),
    (dict(ngram_probs=[True]), TypeError, "entry 1 must be a number"),
    (dict(ngram_masking=False, ngram_probs="0.5,0.5"), ValueError,
     r"ngram_probs \('0\.5,0\.5'\) needs ngram_masking=True \(--ngram_masking\)"),
    (dict(do_whole_word_mask=False), ValueError,
     "ngram_masking masks n-grams of whole words: it needs do_whole_word_mask=True"),
    (dict(mode="compat"), ValueError, "ngram_masking is a fast-mode option"),
])
def test_bad_ngram_flags(pd_cache, vocab_file, tmp_path, kwargs, error, match):
    args = dict(do_whole_word_mask=True, ngram_masking=True, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        wwm_fast.create_instances(pd_cache, vocab_file, str(tmp_path / "o" / "x.tfrecord"),
                                  **args)
    assert _nothing_written(tmp_path / "o")


def test_tolerated_rounding_and_zero_entries(shards, tok):
    """A table may sum to 1 within 1e-5 (thirds written as 0.333333) and hold zeros."""
    docs, inst = shards[0]
    out = sample_masks(docs, inst, tok, ngram_probs="0.333333,0,0.333333,0.333333")
    assert out.ngram_drawn_hist[2] == 0 and out.ngram_drawn_hist[[1, 3, 4]].min() > 0
    with pytest.raises(ValueError, match="sum to 1"):
        sample_masks(docs, inst, tok, ngram_probs="0.3333,0.3333,0.3333")


def test_cli_errors_name_the_flag_and_value(pd_cache, vocab_file, tmp_path, capsys):
    base = ["create", "--input_file", pd_cache, "--vocab_file", vocab_file, "--output_file",
            str(tmp_path / "o" / "x.tfrecord"), "--noprogress"]
    assert main(base + ["--ngram_probs", "0.5,0.5"]) == 2
    assert "ngram_probs ('0.5,0.5') needs ngram_masking=True (--ngram_masking)" \
        in capsys.readouterr().err
    assert main(base + ["--ngram_masking"]) == 2
    assert "needs do_whole_word_mask=True (--do_whole_word_mask)" in capsys.readouterr().err
    assert _nothing_written(tmp_path / "o")
    assert main(base + ["--do_whole_word_mask", "--ngram_masking", "--dupe_factor", "1"]) == 0
    err = capsys.readouterr().err
    assert "masked n-grams by size in words: 1: " in err and "(sizes drawn: 1: " in err


@pytest.mark.parametrize("table, message", [
    ("0.4,0.3,0.2,0.2", "'0.4,0.3,0.2,0.2': probabilities must sum to 1, they sum to 1.1"),
    ("0.4,0.3,0.2", "'0.4,0.3,0.2': probabilities must sum to 1, they sum to 0.9"),
    ("1.2,-0.2", "'1.2,-0.2': the probability of 2-grams must be a finite number >= 0, "
                 "got -0.2"),
    ("0.5,inf", "'0.5,inf': the probability of 2-grams must be a finite number >= 0, got inf"),
    ("0.5,half", "'0.5,half': entry 2 ('half') is not a number"),
    ("0.5,,0.5", "'0.5,,0.5': entry 2 ('') is not a number"),
    ("", "empty: give 1 to 10 comma-separated probabilities"),
    (",".join(["0.0625"] * 16), "16 entries, at most 10"),
])
def test_cli_bad_table_stops_while_parsing(table, message, capsys, tmp_path):
    """--ngram_probs is checked by the parser, like the numeric flags (wwm_fast/_limits.py): one
    line naming the flag and the value, exit status 2, before any file is looked at (the input
    and vocab here do not exist)."""
    with pytest.raises(SystemExit) as e:
        main(["create", "--input_file", str(tmp_path / "missing.txt"), "--vocab_file",
              str(tmp_path / "missing_vocab.txt"), "--output_file", str(tmp_path / "o" / "x"),
              "--do_whole_word_mask", "--ngram_masking", "--ngram_probs", table])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("wwm-fast create: error: argument --ngram_probs: ") and message in err
    assert not (tmp_path / "o").exists()


def test_cli_help_explains_the_ngram_flags(capsys):
    with pytest.raises(SystemExit):
        main(["create", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--ngram_masking [{true,false}] fast mode: mask n-grams of whole words (MacBERT)" in out
    assert ("--ngram_probs P1,P2,... with --ngram_masking: probabilities of n-grams of 1, 2, ... "
            "whole words, 1 to 10 entries summing to 1 (default: 0.4,0.3,0.2,0.1, MacBERT's)"
            in out)


@pytest.mark.parametrize("probs,error,match", [
    (np.zeros(0), ValueError, "must have 1 to 10 entries, got 0"),
    (np.full(11, 1 / 11), ValueError, "must have 1 to 10 entries, got 11"),
    (np.array([0.5, -0.5, 1.0]), ValueError, "size 2 must be a finite number >= 0"),
    (np.array([np.inf]), ValueError, "size 1 must be a finite number >= 0"),
    (np.array([0.0, 0.0]), ValueError, "must sum to 1, got 0"),
    (np.array([0.5, 0.5 + 2e-5]), ValueError, "must sum to 1"),
    (np.ones((1, 1)), ValueError, "ngram_probs must be 1-D"),
    (np.array([1.0], np.float32), TypeError, "incompatible function arguments"),
])
def test_native_table_checks(probs, error, match):
    c = ni.corpus()
    inst = ni.instances([0], [3], [5], [3])
    inst["key"] = np.array([1], np.uint64)
    with pytest.raises(error, match=match):
        _masking.sample_ngram_masks(c, inst, 16, 4, 0.15, True, probs, ni.MASK, ni.RAND_IDS, 1)
