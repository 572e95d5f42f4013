"""compat mode with reference="garden" == TF Model Garden's create_pretraining_data.py, record by
record, on slices of both shared corpora; its masking == the script's function call by call; bad
input gives clear errors.

The oracle is the unmodified script from PyPI tf-models-official (tests/garden_oracle.py says how
it is installed, run and what is stubbed). Every record is decoded by TensorFlow's TFRecord reader
and protobuf parser and compared feature by feature, names included. The tests skip when the
script is not installed, except under CI (CI=true), where a missing oracle is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import wwm_fast
from wwm_fast import _garden
from wwm_fast.compat_garden import garden_tokenizer
from wwm_fast.instances import _seed_key, special_ids
from wwm_fast.tfrecord import read_records

import garden_oracle
from conftest import _in_ci

VOCAB_FLAGS = ("--vocab_file",)


def is_gzip(path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _require_oracle():
    if garden_oracle.script_path() is None:
        message = (f"Model Garden's create_pretraining_data.py is not installed "
                   f"({garden_oracle.INSTALL_HINT})")
        if _in_ci():  # the suite's policy (tests/conftest.py): CI=true fails, CI=false skips
            pytest.fail(message + "; CI=true, so this is an error, not a skip", pytrace=False)
        pytest.skip(message)


# -- inputs: slices of the real corpora, plus an edge-case file ------------------------------------

_EDGE = b"\n".join([
    "第一段：Model Garden 的 tokenizer 把 400 个字符以内的词切成 WordPiece。".encode(),
    b"abc123" * 42 + " 这个词有 252 个字符（Google 的上限是 200）。".encode(),
    b"x" * 401 + " 401 个字符：两边都是 [UNK]。".encode(),
    "无效的 UTF-8 被丢弃：".encode() + b"\xff\xfe" + "之后继续。".encode(),
    "回车\r在行中被删除，unaffable tokenization 2019年12月".encode(),
    b" \t ",  # a blank line: ends the document
    "第二段 line\u2028separator 和 ##hash 开头的词。".encode(),
    b"\x01\x02",  # tokenizes to nothing: skipped, the document goes on
    "一个很短的文档。".encode(),
    b"",
    "第三段：只有一句话。".encode(),
]) + b"\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, people_daily_lines, people_daily_seg_lines, reviews_lines):
    folder = tmp_path_factory.mktemp("garden_corpus")
    paths = {}
    for name, lines in (("pd", people_daily_lines[:2400]), ("rv", reviews_lines[:1600]),
                        ("pd_seg", people_daily_seg_lines[:2400])):
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["edge"] = folder / "edge.txt"
    paths["edge"].write_bytes(_EDGE)
    from wwm_fast.segmentation import get_segmenter, write_cache
    raw = people_daily_lines[:2400]
    words = get_segmenter("pre").segment_batch(raw, segmented=people_daily_seg_lines[:2400])
    paths["pd_cache"] = folder / "pd.wwmseg"
    write_cache(paths["pd_cache"], paths["pd"].read_bytes(), words, segmenter="pre:gold",
                source=str(paths["pd"]))
    return {k: str(v) for k, v in paths.items()}


# -- the record-parity matrix ----------------------------------------------------------------------

# inputs: "pd+rv" = both slices as two files (documents continue across them, as in the script);
# "hfl" = the People's Daily slice with its gold words (ours: a segmentation cache; the script: the
# raw text with the HFL marks); "edge" = the edge-case file + the reviews slice.
CASES = [
    # 0-2: seq 128, whole words off, on with n-grams of 1 and 3 (global seed = random_seed)
    dict(id="seq128-tokens", inputs="pd+rv", seq=128, pred=20, wwm=False, ngram=None),
    dict(id="seq128-wwm-ngram1", inputs="pd+rv", seq=128, pred=20, wwm=True, ngram=1),
    dict(id="seq128-wwm-ngram3", inputs="pd+rv", seq=128, pred=20, wwm=True, ngram=3),
    # 3-5: seq 512; another random seed and an explicit global seed
    dict(id="seq512-tokens", inputs="pd+rv", seq=512, pred=77, wwm=False, ngram=None),
    dict(id="seq512-wwm-ngram1", inputs="pd+rv", seq=512, pred=77, wwm=True, ngram=1,
         seed=7),
    dict(id="seq512-wwm-ngram3", inputs="pd+rv", seq=512, pred=77, wwm=True, ngram=3, seed=7,
         global_seed=99),
    # 6: --gzip_compress and --use_v2_feature_names
    dict(id="gzip-v2-ngram3", inputs="pd+rv", seq=128, pred=20, wwm=True, ngram=3, gzip=True,
         v2=True),
    # 7-8: Chinese whole words (gold segmentation) with Model Garden's n-grams
    dict(id="hfl-words-seq128-ngram3", inputs="hfl", seq=128, pred=20, wwm=True, ngram=3),
    dict(id="hfl-words-seq512-ngram1", inputs="hfl", seq=512, pred=77, wwm=True, ngram=1),
    # 9: 252-char words (400-char limit), invalid UTF-8, \r, U+2028, blank and empty lines,
    # short instances with much truncation (## pieces at the start of segment B)
    dict(id="edge-seq32-ngram2", inputs="edge", seq=32, pred=8, wwm=True, ngram=2,
         masked_lm_prob=0.3, dupe=3),
]


def _case_inputs(case, corpus):
    """(our input files, the script's input files)"""
    if case["inputs"] == "pd+rv":
        files = [corpus["pd"], corpus["rv"]]
        return files, files
    if case["inputs"] == "hfl":
        return [corpus["pd_cache"]], [corpus["pd"]]
    return [corpus["edge"], corpus["rv"]], [corpus["edge"], corpus["rv"]]


def _n_outputs(case):
    return 1 if case["inputs"] == "hfl" else 2


def _garden_job(case, corpus, vocab_file, outputs):
    _, inputs = _case_inputs(case, corpus)
    argv = ["--input_file", ",".join(inputs), "--output_file", ",".join(outputs),
            "--vocab_file", vocab_file, "--max_seq_length", str(case["seq"]),
            "--max_predictions_per_seq", str(case["pred"]),
            "--random_seed", str(case.get("seed", 12345)),
            "--dupe_factor", str(case.get("dupe", 2)),
            "--masked_lm_prob", str(case.get("masked_lm_prob", 0.15)),
            f"--do_whole_word_mask={'true' if case['wwm'] else 'false'}"]
    if case["ngram"] is not None:
        argv += ["--max_ngram_size", str(case["ngram"])]
    if case.get("gzip"):
        argv.append("--gzip_compress")
    if case.get("v2"):
        argv.append("--use_v2_feature_names")
    gold = [corpus["pd"], corpus["pd_seg"]] if case["inputs"] == "hfl" else None
    return {"kind": "create", "argv": argv, "gold": gold,
            "global_seed": case.get("global_seed", case.get("seed", 12345))}


@pytest.fixture(scope="module")
def garden(corpus, vocab_file, tmp_path_factory):
    """Runs every oracle job of this module in one subprocess (one TensorFlow start)."""
    _require_oracle()
    folder = tmp_path_factory.mktemp("garden_oracle")
    jobs, outputs = [], {}
    for case in CASES:
        outs = [str(folder / f"{case['id']}-{j}.tfrecord") for j in range(_n_outputs(case))]
        outputs[case["id"]] = outs
        jobs.append(_garden_job(case, corpus, vocab_file, outs))
    for n in (1, 3):  # n-grams without whole words: the script refuses
        case = dict(CASES[0], ngram=n)
        jobs.append(_garden_job(case, corpus, vocab_file, [str(folder / f"refused-{n}.tfrecord")]))
    jobs += [dict(job, kind="mask", vocab_file=vocab_file) for job in _mask_jobs(vocab_file)]
    results = garden_oracle.run_jobs(jobs, folder)
    n_cases = len(CASES)
    return {"outputs": outputs, "create": results[:n_cases],
            "refused": results[n_cases:n_cases + 2], "mask": results[n_cases + 2:]}


def _assert_same_records(ours, theirs, what):
    assert len(ours) == len(theirs) > 0, what
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            names = sorted(set(a) | set(b))
            diff = [n for n in names if a.get(n) != b.get(n)]
            raise AssertionError(f"{what}: record {k} of {len(ours)} differs in {diff}: "
                                 f"ours {[a.get(n) for n in diff]} vs {[b.get(n) for n in diff]}")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_records_equal_model_garden(case, corpus, vocab_file, garden, tmp_path):
    """Decoded records (every feature, names and types included) equal to the script's."""
    result = garden["create"][CASES.index(case)]
    assert result == {"ok": True}, result
    ours_in, _ = _case_inputs(case, corpus)
    ours = [str(tmp_path / f"ours-{j}.tfrecord") for j in range(_n_outputs(case))]
    # the script's flag on Chinese without word boundaries (## groups only) is written as asked,
    # with an OutputWarning saying so; the HFL-marked input (a segmentation cache) has words
    warns = (pytest.warns(wwm_fast.OutputWarning, match="## pieces only")
             if case["wwm"] and case["inputs"] != "hfl" else contextlib.nullcontext())
    with warns:
        stats = wwm_fast.create_instances(
            ours_in, vocab_file, ours, mode="compat", reference="garden",
            max_seq_length=case["seq"], max_predictions_per_seq=case["pred"],
            random_seed=case.get("seed", 12345), dupe_factor=case.get("dupe", 2),
            masked_lm_prob=case.get("masked_lm_prob", 0.15), do_whole_word_mask=case["wwm"],
            max_ngram_size=case["ngram"], garden_global_seed=case.get("global_seed"),
            gzip=case.get("gzip", False), use_v2_feature_names=case.get("v2", False),
            errors="ignore" if case["inputs"] == "edge" else "strict", progress=False)
    compression = "GZIP" if case.get("gzip") else None
    total = 0
    for mine, theirs in zip(ours, garden["outputs"][case["id"]]):
        assert is_gzip(mine) == is_gzip(theirs) == bool(case.get("gzip"))
        a = garden_oracle.decode_examples(mine, compression)
        b = garden_oracle.decode_examples(theirs, compression)
        _assert_same_records(a, b, f"{case['id']}: {Path(mine).name}")
        total += len(a)
        names = set(a[0])
        v2 = {"input_word_ids", "input_type_ids"}
        assert (v2 <= names) == bool(case.get("v2")) and len(names) == 7
    assert stats.instances == total
    hist = stats.total["masked_group_hist"]
    if case["wwm"] and case["inputs"] != "edge":
        assert sum(hist[2:]) > 0  # multi-token words (or n-grams) were masked whole
    if case["inputs"] == "hfl":
        assert stats.total["word_continuations"] > 0.3 * stats.total["corpus_tokens"]


def test_ngrams_without_whole_words_are_refused_like_model_garden(corpus, vocab_file, garden,
                                                                  tmp_path):
    for n, result in zip((1, 3), garden["refused"]):
        assert "cannot use ngram masking without whole word masking" in result["error"]
        with pytest.raises(ValueError, match=f"max_ngram_size={n} .*needs do_whole_word_mask"):
            wwm_fast.create_instances([corpus["pd"]], vocab_file, str(tmp_path / "x.tfrecord"),
                                      mode="compat", reference="garden", max_ngram_size=n,
                                      progress=False)
        assert not list(tmp_path.iterdir())


# -- the masking function alone, call by call ------------------------------------------------------

_MASK_TEXT = ("The quick brown fox jumps over unaffable tokenization in 2019年12月，"
              "我们在北京大学的实验室里讨论了 BERT 和 whole word masking 的细节。",
              "playing footballers ２０１９ 年，上海浦东新区的 wwm-ext 预训练模型。")

# (do_whole_word_mask, max_ngram_size, masked_lm_prob, max_predictions_per_seq)
_MASK_PARAMS = [
    (False, None, 0.15, 20),
    (True, None, 0.15, 20),
    (True, 2, 0.15, 20),
    (True, 3, 0.5, 40),
    (True, 5, 0.3, 7),
    (True, 3, 0.15, 2),
    (True, 8, 0.9, 80),
]


def _mask_tokens(vocab_file):
    """[CLS] A [SEP] B [SEP], B starting with a ## piece (as after front truncation)."""
    tok = garden_tokenizer(vocab_file)
    a, b = (tok.tokenize(t) for t in _MASK_TEXT)
    return ["[CLS]"] + a + ["[SEP]", "##ing"] + b + ["[SEP]"]


def _mask_jobs(vocab_file):
    tokens = _mask_tokens(vocab_file)
    return [{"tokens": tokens, "do_whole_word_mask": wwm, "max_ngram_size": n,
             "masked_lm_prob": p, "max_predictions_per_seq": m, "seed": 100 + i,
             "global_seed": 200 + i, "repeats": 300}
            for i, (wwm, n, p, m) in enumerate(_MASK_PARAMS)]


@pytest.mark.parametrize("index", range(len(_MASK_PARAMS)),
                         ids=[f"wwm={w}-n={n}-p={p}-max={m}" for w, n, p, m in _MASK_PARAMS])
def test_masking_equals_model_garden_call_by_call(index, vocab_file, garden):
    """300 calls in a row with one generator pair: every prediction, and both generators end in
    the same state (the next random() agrees), so every draw was made in the script's order."""
    job = _mask_jobs(vocab_file)[index]
    theirs = garden["mask"][index]
    tok = garden_tokenizer(vocab_file)
    vocab = tok.vocab
    tokens = job["tokens"]
    special = [t in ("[CLS]", "[SEP]") for t in tokens]
    joins = [t.startswith("##") for t in tokens]
    calls, next_random, next_global = _garden._py_mask_garden(
        [vocab[t] for t in tokens], special, joins, job["do_whole_word_mask"],
        _seed_key(job["seed"]), _seed_key(job["global_seed"]),
        job["max_predictions_per_seq"], job["masked_lm_prob"], vocab["[MASK]"],
        special_ids(tok)["rand_ids"], job["max_ngram_size"] or 1, job["repeats"])
    assert len(calls) == len(theirs["calls"]) == job["repeats"]
    sizes = set()
    for k, ((pos, shown, labels), (t_out, t_pos, t_labels)) in enumerate(
            zip(calls, theirs["calls"])):
        assert pos == t_pos, f"call {k}"
        assert labels == [vocab[t] for t in t_labels], f"call {k}"
        assert shown == [vocab[t_out[p]] for p in t_pos], f"call {k}"
        runs = np.split(np.array(pos), np.flatnonzero(np.diff(pos) != 1) + 1) if pos else []
        sizes.update(len(r) for r in runs)
    assert next_random == theirs["next_random"]
    if (job["max_ngram_size"] or 1) > 1:  # with N = 1 the global draw is skipped (no effect)
        assert next_global == theirs["next_global_random"]
    if job["do_whole_word_mask"] and (job["max_ngram_size"] or 1) >= 3:
        assert max(sizes) >= min(3, job["max_predictions_per_seq"])  # n-grams of words


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(max_ngram_size=0), ValueError, r"max_ngram_size must be >= 1 .*got 0"),
    (dict(max_ngram_size=-2), ValueError, r"max_ngram_size must be >= 1 .*got -2"),
    (dict(max_ngram_size=126), ValueError, r"max_ngram_size must be <= max_seq_length - 3 = 125"),
    (dict(max_ngram_size=2.0), TypeError, "max_ngram_size must be an int, got 2.0"),
    (dict(max_ngram_size=True), TypeError, "max_ngram_size must be an int, got True"),
    (dict(max_ngram_size="3"), TypeError, "max_ngram_size must be an int, got '3'"),
    (dict(max_ngram_size=3, do_whole_word_mask=False), ValueError,
     "max_ngram_size=3 masks n-grams of whole words: it needs do_whole_word_mask=True"),
    (dict(max_ngram_size=2049, max_seq_length=8192), ValueError,
     r"max_ngram_size must be in \[1, 2048\], got 2049"),
    (dict(garden_global_seed=1.5), TypeError, "garden_global_seed must be an int"),
    (dict(garden_global_seed=-1), ValueError,
     r"garden_global_seed must be in \[0, 9223372036854775807\], got -1"),
    (dict(garden_global_seed=2**63), ValueError, "garden_global_seed must be in"),
    (dict(use_v2_feature_names="yes"), TypeError, "use_v2_feature_names must be a bool"),
    (dict(reference="tf"), ValueError, r"reference must be one of \['google', 'garden'\]"),
    (dict(mode="fast"), ValueError, "reference='garden' .*needs mode='compat', got mode='fast'"),
    (dict(reference="google", max_ngram_size=3), ValueError,
     "max_ngram_size is Model Garden's: it needs mode='compat', reference='garden'"),
    (dict(reference="google", use_v2_feature_names=True, garden_global_seed=1), ValueError,
     "use_v2_feature_names, garden_global_seed are Model Garden's: they need"),
    (dict(mode="fast", reference="google", max_ngram_size=3), ValueError,
     r"got mode='fast', reference='google'"),
])
def test_bad_garden_options(corpus, vocab_file, tmp_path, kwargs, error, match):
    args = dict(mode="compat", reference="garden", do_whole_word_mask=True)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        wwm_fast.create_instances([corpus["rv"]], vocab_file, str(tmp_path / "x.tfrecord"),
                                  progress=False, **args)
    assert not list(tmp_path.iterdir())


def test_cli_flags_and_inspect(corpus, vocab_file, tmp_path, capsys):
    """Model Garden's flag names on the command line; inspect reads v2-named, gzipped output."""
    from wwm_fast.cli import main

    out = tmp_path / "g.tfrecord"
    base = ["create", "--input_file", corpus["rv"], "--vocab_file", vocab_file,
            "--output_file", str(out), "--noprogress", "--mode", "compat", "--reference", "garden"]
    # ranges are checked while parsing (wwm_fast/_limits.py): one line, exit status 2
    for flag, value, expected in (("--max_ngram_size", "0", "an integer in [1, 2048], got 0"),
                                  ("--max_ngram_size", "2049", "got 2049"),
                                  ("--max_ngram_size", "two", "got 'two'"),
                                  ("--garden_global_seed", "-1", "in [0, 2**63 - 1], got -1")):
        with pytest.raises(SystemExit) as e:
            main(base + [flag, value, "--do_whole_word_mask"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"argument {flag}: must be " in err and expected in err, err
        assert len(err.strip().splitlines()) == 1, err
    # how the flags combine is checked before any work: one line, exit status 2
    assert main(base + ["--max_ngram_size", "200", "--do_whole_word_mask"]) == 2
    assert "max_ngram_size must be <= max_seq_length - 3 = 125" in capsys.readouterr().err
    assert main(base + ["--max_ngram_size", "3"]) == 2
    assert "needs do_whole_word_mask=True" in capsys.readouterr().err
    assert not out.exists()
    assert main(base + ["--max_ngram_size", "3", "--do_whole_word_mask", "--dupe_factor", "1",
                        "--gzip_compress", "--use_v2_feature_names", "--garden_global_seed",
                        "5"]) == 0
    capsys.readouterr()
    assert is_gzip(out)
    first = next(iter(read_records(out)))
    assert b"input_word_ids" in first and b"input_type_ids" in first
    assert main(["inspect", str(out), "--vocab_file", vocab_file, "--stats"]) == 0
    assert "records" in capsys.readouterr().out


def test_rename_features_recomputes_framing_and_checks_input(corpus, vocab_file, tmp_path):
    out = tmp_path / "plain.tfrecord"
    wwm_fast.create_instances([corpus["rv"]], vocab_file, str(out), mode="compat",
                              reference="garden", dupe_factor=1, progress=False)
    data = np.frombuffer(out.read_bytes(), np.uint8)
    renamed = _garden.rename_features(data, [("input_ids", "input_word_ids"),
                                             ("segment_ids", "input_type_ids")])
    (tmp_path / "v2.tfrecord").write_bytes(renamed.tobytes())
    plain = garden_oracle.decode_examples(out)
    v2 = garden_oracle.decode_examples(tmp_path / "v2.tfrecord")  # TF checks both CRCs
    names = {"input_ids": "input_word_ids", "segment_ids": "input_type_ids"}
    assert v2 == [{names.get(k, k): v for k, v in r.items()} for r in plain]
    assert _garden.rename_features(data, []).tobytes() == data.tobytes()
    corrupt = data.copy()
    corrupt[20] ^= 1
    with pytest.raises(ValueError, match="record 0 at byte 0: data CRC mismatch"):
        _garden.rename_features(corrupt, [])
    with pytest.raises(ValueError, match="truncated"):
        _garden.rename_features(data[:-3].copy(), [])
    with pytest.raises(TypeError):
        _garden.rename_features(data.astype(np.int32), [])


def test_stats_json_reports_the_reference(corpus, vocab_file, tmp_path):
    out = tmp_path / "s.tfrecord"
    with pytest.warns(wwm_fast.OutputWarning, match="## pieces only"):
        stats = wwm_fast.create_instances([corpus["rv"]], vocab_file, str(out), mode="compat",
                                          reference="garden", do_whole_word_mask=True,
                                          max_ngram_size=3, dupe_factor=1, progress=False)
    saved = json.loads((tmp_path / "s.tfrecord.stats.json").read_text())
    assert saved["instances"] == stats.instances == sum(1 for _ in read_records(out))
    assert saved["fingerprint"] == "compat:garden"


def test_compat_refuses_a_tokenizer_of_another_reference(corpus, vocab_file, tmp_path):
    """compat.create_compat is one body for every reference: handed Google's tokenizer (words of
    up to 200 characters) for Model Garden's script (400), it refuses before reading anything."""
    from wwm_fast import compat_garden
    from wwm_fast.compat import create_compat
    from wwm_fast.shard import ShardJob, tokenizer_for

    job = ShardJob(os.path.abspath(vocab_file), True, 128, 20, 0.15, 0.1, 1, 12345, True, None,
                   "compat", True, False, "strict", 1)
    opts = compat_garden.check_options(
        mode="compat", reference="garden", max_ngram_size=2, use_v2_feature_names=False,
        garden_global_seed=None, do_whole_word_mask=True, max_seq_length=128, random_seed=12345)
    out = tmp_path / "x.tfrecord"
    with pytest.raises(ValueError, match="max_input_chars_per_word=400, got a tokenizer with 200"):
        create_compat([corpus["rv"]], [str(out)], job, tokenizer_for(job), False,
                      compat_garden.reference(opts))
    assert list(tmp_path.iterdir()) == []


def test_masking_properties_on_a_long_instance(vocab_file):
    """200,000 tokens in 40 segments, words of 1-4 tokens, n-grams up to 6: predictions unique,
    ascending, never on [CLS]/[SEP]; every masked word is masked whole; every masked run of
    positions lies inside one segment; the count never exceeds max_predictions."""
    rng = np.random.default_rng(0)
    n, max_pred = 200_000, 30_000
    tokens = rng.integers(670, 8000, n).astype(np.int32)
    special = np.zeros(n, bool)
    special[np.linspace(0, n - 1, 41).astype(int)] = True
    joins = (rng.random(n) < 0.4) & ~special
    joins[np.flatnonzero(special)[:-1] + 1] |= True  # continuations right after [SEP] too
    tok = garden_tokenizer(vocab_file)
    calls, _, _ = _garden._py_mask_garden(
        tokens.tolist(), special.tolist(), joins.tolist(), True, [1], [2], max_pred, 0.15,
        tok.vocab["[MASK]"], special_ids(tok)["rand_ids"], 6, 1)
    pos, shown, labels = (np.array(x) for x in calls[0])
    assert 0.9 * max_pred < len(pos) <= max_pred
    assert (np.diff(pos) > 0).all() and not special[pos].any()
    assert (labels == tokens[pos]).all()
    masked = np.zeros(n, bool)
    masked[pos] = True
    # a word = a token plus the continuations that follow it inside a segment
    word_id = np.cumsum(~joins | np.r_[True, special[:-1]])
    size = np.bincount(word_id[~special])
    hit = np.bincount(word_id[~special], weights=masked[~special], minlength=len(size))
    partly = np.flatnonzero((hit > 0) & (hit < size))
    assert not len(partly), f"words partly masked: {partly[:5]}"
    segment = np.cumsum(special)
    runs = np.split(pos, np.flatnonzero(np.diff(pos) != 1) + 1)
    assert all(segment[r[0]] == segment[r[-1]] for r in runs)
    assert np.mean(shown == tok.vocab["[MASK]"]) == pytest.approx(0.8, abs=0.05)


def test_native_builder_rejects_bad_ngram_sizes(vocab_file):
    from wwm_fast.instances import Documents

    tok = garden_tokenizer(vocab_file)
    sp = special_ids(tok)
    docs = Documents(np.array([1962, 1962, 1962], np.int32), np.ones(3, np.uint8),
                     np.array([0, 1, 2, 3], np.int64), np.array([0, 3], np.int64))
    for n, whole_word, match in ((0, True, r"max_ngram_size must be in \[1, max_seq_length - 3 "
                                           r"= 125\], got 0"),
                                 (126, True, "got 126"),
                                 (2, False, "needs whole word masking")):
        with pytest.raises(ValueError, match=match):
            _garden.build_garden(docs._as_dict(), [1], [1], 128, 20, 0.15, 0.1, 1, whole_word, n,
                                 sp["cls_id"], sp["sep_id"], sp["mask_id"], sp["rand_ids"])
