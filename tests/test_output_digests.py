"""Output bytes pinned: sha256 of every TFRecord ``create_instances`` writes on slices of the shared
corpora, recorded before the restructuring of issue 12 (create.py split into shard / stats / pool /
compat modules) and compared on every run since.

One case per path through the code: fast and compat, with and without whole word masking (WordPiece
``##`` groups, a segmentation cache, a segmenter run on the fly), single segments, GZIP, and the
Beam runner (which must write the local pool's bytes). The statistics are pinned too (every field
that does not depend on the clock or the paths), so moving the stats code cannot change them.

A deliberate change of the output format updates DIGESTS: run with WWM_FAST_PRINT_DIGESTS=1 and
-s, check the change is the intended one, and paste the printed table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pytest

import wwm_fast

PRINT = os.environ.get("WWM_FAST_PRINT_DIGESTS") == "1"
_VOLATILE = ("seconds", "skipped", "output_file", "input_files", "fingerprint")

# case -> (sha256 of each output file in order, sha256 of the stats without volatile fields)
DIGESTS = {
    "fast": (["3c71fc13dce3eabf06314a9b0845637ffd23b35b9e9124124dd9a2e14bcae41b",
              "7b8b18e6989862704d4c645e24c876d981a25f5a9b4f0f6eeb97f1eb455015be"],
             "c47d1d551995b550d61e145ffc866c9b3a00a7c863d3a81bd212eb0a25691414"),
    "fast_wwm##": (["31c2bad1ce363a03dfc685ef0c6ec89a9a5a86fc191011562d365a7a22ade3ad",
                    "01d8d6f156a473c43b9950753da9771565dbeae15c1df484ae21dd36b9331438"],
                   "0269a3e130dc883e64ea69d97915d2e6b24ad1ee5a5f0d95cbd0d4537c3a618c"),
    "fast_wwm_cache": (["36aa2bc7258213b8150b072b6fbd6099b2d11c6ab5f2802fc1724774aeaaab50"],
                       "92d0050a85b31aaa386ae6257b4748f974d259b07aced7e681648a6e92a70b41"),
    "fast_wwm_segmenter": (["748eb909548523c38d067668f11733ce1e6e22be1732c7eeb39a38b494a2b6d0",
                            "6010e32ebbd3790b216a9def57f6789ceebea820561c79c3efbd07099ed8e92d"],
                           "73d5c10202bdda3abd05d7474b27085d2206870a8c6213dda86664b49a61cc1f"),
    "fast_single": (["74537160f82b0876a6ac627d03b8125b8e43a85d7ce7185c06c4db7e1fc382dc"],
                    "91f5ff379292b6ad804a1ce27e8bf45e24a7fb5eea93a615d7d437b0bbd3e680"),
    "fast_gzip": (["b61a078bedde17cf8b64f9d7da28ac29714a8cf6d8a7bd4af3d891a348c977bb"],
                  "b6fb9a6a76cf88664b7d8d418d5d349a27e71f19d123b2ea6e00993a509af404"),
    "compat": (["f2093b870ca449ed3161b27f83721b11d971fcb1264b0a11c07789005490b337",
                "79d9b7b2b42c9b9d683e2f847cfcd7823fbe15ae27cdd7c302b5733a6a9a17f2"],
               "861b90b5cf0f8cb921b80c38d28bcd73b522d256a41eccb2181723083462c208"),
    "compat_wwm##": (["5a11973a0bd70ca5e804914ee337707c0783aa73ef6e3247537ce70d533c221b"],
                     "c152940d0ba85d59000edc428695321b9db92b693d624725d9f8d89cfce79d66"),
    "compat_wwm_cache": (["6e417c400090013d05b1ca04042d744bf45ab5a2bbea518c7ad7c7b921bc8ea9"],
                         "006e5dc426ec07009a5b9429142d5f7f4f1c013f302c14fec1ff3f9cf413489a"),
    "beam": (["3c71fc13dce3eabf06314a9b0845637ffd23b35b9e9124124dd9a2e14bcae41b",
              "7b8b18e6989862704d4c645e24c876d981a25f5a9b4f0f6eeb97f1eb455015be"],
             "c47d1d551995b550d61e145ffc866c9b3a00a7c863d3a81bd212eb0a25691414"),
    "beam_wwm_cache": (["36aa2bc7258213b8150b072b6fbd6099b2d11c6ab5f2802fc1724774aeaaab50"],
                       "92d0050a85b31aaa386ae6257b4748f974d259b07aced7e681648a6e92a70b41"),
}

# case -> (inputs, create_instances keyword arguments); inputs name the fixture's files
CASES = {
    # 0: fast, plain masking, two shards, two worker processes
    "fast": (["pd", "rv"], dict(num_workers=2)),
    # 1: fast, whole words from WordPiece ## groups only
    "fast_wwm##": (["pd", "rv"], dict(do_whole_word_mask=True, num_workers=1)),
    # 2: fast, whole words from a segmentation cache (gold People's Daily words)
    "fast_wwm_cache": (["pd_cache"], dict(do_whole_word_mask=True)),
    # 3: fast, whole words from a segmenter run on the fly (pre-segmented text, one space)
    "fast_wwm_segmenter": (["pd_seg", "rv"], dict(segmenter="pre", num_workers=2)),
    # 4: fast, single segments (no NSP), long sequences
    "fast_single": (["pd_cache"], dict(next_sentence=False, max_seq_length=512,
                                       max_predictions_per_seq=77)),
    # 5: fast, GZIP-compressed records
    "fast_gzip": (["rv"], dict(gzip=True)),
    # 6: compat (Google's records), two inputs round-robin into two outputs
    "compat": (["pd", "rv"], dict(mode="compat", outputs=2)),
    # 7: compat, whole words from ## groups
    "compat_wwm##": (["pd", "rv"], dict(mode="compat", do_whole_word_mask=True)),
    # 8: compat, whole words from a segmentation cache (the HFL recipe)
    "compat_wwm_cache": (["pd_cache"], dict(mode="compat", do_whole_word_mask=True)),
    # 9: the Beam runner (in-process FnApiRunner): the bytes of case 0
    "beam": (["pd", "rv"], dict(runner="beam", beam_options=["--direct_num_workers=1"])),
    # 10: the Beam runner, whole words from a segmentation cache: the bytes of case 2
    "beam_wwm_cache": (["pd_cache"], dict(do_whole_word_mask=True, runner="beam",
                                          beam_options=["--direct_num_workers=1"])),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, people_daily_lines, people_daily_seg_lines, reviews_lines):
    folder = tmp_path_factory.mktemp("digest_corpus")
    paths = {}
    for name, lines in (("pd", people_daily_lines[:1500]), ("rv", reviews_lines[:1200]),
                        ("pd_seg", people_daily_seg_lines[:1500])):
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    from wwm_fast.segmentation import get_segmenter, write_cache
    words = get_segmenter("pre").segment_batch(people_daily_lines[:1500],
                                               segmented=people_daily_seg_lines[:1500])
    paths["pd_cache"] = folder / "pd.wwmseg"
    write_cache(paths["pd_cache"], paths["pd"].read_bytes(), words, segmenter="pre:gold",
                source=str(paths["pd"]))
    return paths


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _stats_digest(stats) -> str:
    shards = [{k: v for k, v in s.to_json().items() if k not in _VOLATILE} for s in stats.shards]
    payload = {"total": stats.total, "shards": shards, "mode": stats.mode}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_output_bytes_unchanged(case, corpus, vocab_file, tmp_path):
    names, kwargs = CASES[case]
    kwargs = dict(kwargs)
    if kwargs.get("runner") == "beam":
        pytest.importorskip("apache_beam")
    n_out = kwargs.pop("outputs", 1)
    outputs = [str(tmp_path / f"o{j}.tfrecord") for j in range(n_out)]
    # ## groups only on Chinese text: written as asked, with an OutputWarning saying so
    warns = (pytest.warns(wwm_fast.OutputWarning, match="## pieces only") if case.endswith("##")
             else contextlib.nullcontext())
    with warns:
        stats = wwm_fast.create_instances([str(corpus[n]) for n in names], vocab_file,
                                          outputs if n_out > 1 else outputs[0], dupe_factor=2,
                                          progress=False, **kwargs)
    got = ([_sha(f) for f in stats.output_files], _stats_digest(stats))
    if PRINT:
        print(f"\n    {case!r}: ({got[0]!r},\n        {got[1]!r}),")
        return
    assert case in DIGESTS, f"no recorded digests for {case!r} (see the module docstring)"
    assert got == DIGESTS[case]


def test_beam_cases_pin_the_local_bytes():
    """The Beam cases hold the local pool's bytes and statistics (so the table cannot drift)."""
    assert DIGESTS["beam"] == DIGESTS["fast"]
    assert DIGESTS["beam_wwm_cache"] == DIGESTS["fast_wwm_cache"]
