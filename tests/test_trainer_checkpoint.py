"""Checkpoints: Google's TF1 layout, TF1 consumers, init from Google checkpoints, resume after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import Trainer, export_model  # noqa: E402
from wwm_trainer import BertConfig  # noqa: E402
from wwm_trainer.checkpoint import (CheckpointManager, NonFiniteCheckpointError, numpy_values,  # noqa: E402
                                    write_checkpoint)
from wwm_trainer.cli import main as cli_main  # noqa: E402

from trainer_helpers import (TINY, google_names, tiny_options, write_config,  # noqa: E402
                             write_synthetic_records)

HELPERS = Path(__file__).resolve().parent / "trainer_helpers.py"
SEQ, PRED = 32, 5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("trainer_ckpt")
    files = [write_synthetic_records(d / f"part-{i}.tfrecord", 96, seq_len=SEQ, max_pred=PRED,
                                     vocab_size=TINY["vocab_size"], seed=i) for i in range(2)]
    return {"config": write_config(d / "bert_config.json"), "input": str(d / "part-*.tfrecord"),
            "files": files, "dir": d}


def _opts(data, out, **kw):
    return tiny_options(**{"bert_config_file": data["config"], "input_file": data["input"],
                           "output_dir": out, "max_seq_length": SEQ,
                           "max_predictions_per_seq": PRED, "num_train_steps": 4,
                           "num_warmup_steps": 1, **kw})


def _tf1_google_checkpoint(path: Path, cfg: dict, *, drop=(), extra=True, seed=0):
    """A checkpoint exactly as Google's TF1 code writes it: tf.compat.v1 variables in variable
    scopes, saved by tf.compat.v1.train.Saver; no optimizer slots."""
    rng = np.random.default_rng(seed)
    values = {}
    g = tf.Graph()
    with g.as_default():
        for name, shape in google_names(cfg).items():
            if name in drop:
                continue
            scope, leaf = name.rsplit("/", 1)
            value = (rng.standard_normal(shape) * 0.02).astype(np.float32)
            values[name] = value
            with tf.compat.v1.variable_scope(scope):
                tf.compat.v1.get_variable(leaf, initializer=value)
        if extra:
            tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(path / "bert_model.ckpt"), write_meta_graph=False)
    return prefix, values


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A LAMB run of 4 steps with checkpoints at 2 and 4 (shared by the tests that only read it)."""
    out = tmp_path_factory.mktemp("trained") / "out"
    trainer = Trainer(_opts(data, out))
    result = trainer.train()
    return trainer, result, out


def test_saved_checkpoint_is_google_layout_with_slots(trained):
    trainer, result, out = trained
    assert result.global_step == 4 and len(result.losses) == 4
    latest = tf.train.latest_checkpoint(str(out))
    assert latest.endswith("model.ckpt-4")
    listed = dict(tf.train.list_variables(latest))
    model = google_names(TINY)
    expected = dict(model)
    for name, shape in model.items():
        expected[f"{name}/lamb_m"] = shape
        expected[f"{name}/lamb_v"] = shape
    expected["global_step"] = []
    assert {k: list(v) for k, v in listed.items()} == expected
    reader = tf.train.load_checkpoint(latest)
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    assert int(reader.get_tensor("global_step")) == 4
    state = (out / "checkpoint").read_text()
    assert 'model_checkpoint_path: "model.ckpt-4"' in state
    assert 'all_model_checkpoint_paths: "model.ckpt-2"' in state
    assert not list(out.glob("*_temp_*"))
    for name, var in trainer.checkpoint_tensors().items():
        np.testing.assert_array_equal(reader.get_tensor(name), var.numpy(), err_msg=name)


def test_adamw_slots_are_named_adam(data, tmp_path):
    trainer = Trainer(_opts(data, tmp_path / "out", optimizer="adamw"))
    trainer.restore_or_initialize()
    trainer.save()
    names = dict(tf.train.list_variables(str(tmp_path / "out")))
    assert "bert/embeddings/word_embeddings/adam_m" in names
    assert "cls/seq_relationship/output_bias/adam_v" in names
    assert not any("lamb" in n for n in names)


def test_export_is_slim_and_loads_in_a_tf1_graph(data, trained, tmp_path):
    trainer, _, out = trained
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(TINY["vocab_size"])))
    export = tmp_path / "release"
    assert cli_main(["export", f"--checkpoint={out}", f"--bert_config_file={data['config']}",
                     f"--vocab_file={vocab}", f"--export_dir={export}"]) == 0
    assert sorted(p.name for p in export.iterdir()) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt"]
    listed = {k: list(v) for k, v in tf.train.list_variables(str(export / "bert_model.ckpt"))}
    assert listed == google_names(TINY)  # no slots, no global_step
    assert json.loads((export / "bert_config.json").read_text()) == TINY
    assert (export / "vocab.txt").read_bytes() == vocab.read_bytes()

    trained_values = {n: v.numpy() for n, v in trainer.model.variables_by_name.items()}
    # a TF1 consumer: fine-tuning code builds its graph with tf.compat.v1 variables, then maps the
    # checkpoint in with init_from_checkpoint (Google's run_classifier.py does exactly this)
    g = tf.Graph()
    with g.as_default():
        tf1_vars = {}
        for name, shape in google_names(TINY).items():
            scope, leaf = name.rsplit("/", 1)
            with tf.compat.v1.variable_scope(scope):
                tf1_vars[name] = tf.compat.v1.get_variable(leaf, shape=shape)
        tf.compat.v1.train.init_from_checkpoint(str(export / "bert_model.ckpt"),
                                                {"bert/": "bert/", "cls/": "cls/"})
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            loaded = sess.run(tf1_vars)
    for name, value in trained_values.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_init_from_google_tf1_checkpoint_without_slots(data, tmp_path):
    google_dir = tmp_path / "google"
    google_dir.mkdir()
    # a RoBERTa-style release without the NSP head; Google's own has global_step besides
    nsp = ("cls/seq_relationship/output_weights", "cls/seq_relationship/output_bias")
    prefix, values = _tf1_google_checkpoint(google_dir, TINY, drop=nsp)
    trainer = Trainer(_opts(data, tmp_path / "out", init_checkpoint=prefix, num_train_steps=2))
    trainer.restore_or_initialize()
    report = trainer.init_report
    assert sorted(report.missing) == sorted(nsp)
    assert report.unused == ["global_step"]
    for name, value in values.items():
        np.testing.assert_array_equal(trainer.model.variables_by_name[name].numpy(), value)
    assert trainer.global_step == 0
    slots = trainer.optimizer.slot_variables()
    assert not np.any(slots["bert/embeddings/word_embeddings/lamb_m"].numpy())
    result = trainer.train()
    assert result.global_step == 2 and all(np.isfinite(result.losses))


def test_init_checkpoint_shape_mismatch_names_variable_and_shapes(data, tmp_path, capsys):
    google_dir = tmp_path / "google"
    google_dir.mkdir()
    prefix, _ = _tf1_google_checkpoint(google_dir, {**TINY, "vocab_size": 120})
    trainer = Trainer(_opts(data, tmp_path / "out", init_checkpoint=prefix))
    with pytest.raises(ValueError, match=r"'bert/embeddings/word_embeddings'.*\[120, 16\].*\[97, 16\].*vocab_size"):
        trainer.restore_or_initialize()
    # the same through the CLI: exit status 2 and the message on stderr
    rc = cli_main([f"--bert_config_file={data['config']}", f"--input_file={data['input']}",
                   f"--output_dir={tmp_path / 'cli'}", f"--init_checkpoint={prefix}", "--do_train",
                   f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}",
                   "--train_batch_size=8", "--num_train_steps=2", "--num_warmup_steps=0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bert/embeddings/word_embeddings" in err and "[120, 16]" in err and "[97, 16]" in err
    assert not (tmp_path / "cli" / "checkpoint").exists()


def test_not_a_bert_checkpoint(data, tmp_path):
    other = tmp_path / "other"
    write_checkpoint(str(other / "model.ckpt"), {"dense/kernel": np.zeros([2, 2], np.float32)})
    trainer = Trainer(_opts(data, tmp_path / "out", init_checkpoint=str(other / "model.ckpt")))
    with pytest.raises(ValueError, match="holds none of the model's variables"):
        trainer.restore_or_initialize()
    with pytest.raises(ValueError, match="checkpoint .*missing.* not found"):
        Trainer(_opts(data, tmp_path / "o2", init_checkpoint=str(tmp_path / "missing"))).restore_or_initialize()


def test_resume_errors_name_the_cause(data, tmp_path):
    # a Google release copied into --output_dir has no slots: resume must say to use --init_checkpoint
    out = tmp_path / "out"
    out.mkdir()
    _tf1_google_checkpoint(out, TINY)
    (out / "checkpoint").write_text('model_checkpoint_path: "bert_model.ckpt"\n')
    with pytest.raises(ValueError, match="no optimizer slots: to start from it use --init_checkpoint"):
        Trainer(_opts(data, out)).restore_or_initialize()
    # a LAMB run resumed with --optimizer=adamw
    lamb = Trainer(_opts(data, tmp_path / "lamb"))
    lamb.restore_or_initialize()
    lamb.save()
    with pytest.raises(ValueError, match="lamb_m/v slots, so it was trained with another --optimizer"):
        Trainer(_opts(data, tmp_path / "lamb", optimizer="adamw")).restore_or_initialize()


def test_failed_save_leaves_latest_intact(tmp_path):
    manager = CheckpointManager(str(tmp_path), max_to_keep=2)
    good = {"w": np.ones([3], np.float32), "global_step": np.int64(1)}
    manager.save(1, good)
    # debris of a save killed half-way (TF1's Saver leaves the same): ignored
    (tmp_path / "model.ckpt-2_temp_dead").mkdir()
    (tmp_path / "model.ckpt-2_temp_dead" / "part.index").write_bytes(b"\0garbage")
    with pytest.raises(NonFiniteCheckpointError, match="'w' contains NaN or Inf"):
        manager.save(3, {"w": np.array([1.0, np.nan, 0.0], np.float32)})
    assert manager.latest == str(tmp_path / "model.ckpt-1")
    assert not list(tmp_path.glob("model.ckpt-3*"))
    np.testing.assert_array_equal(numpy_values(str(tmp_path))["w"], good["w"])
    for step in (4, 5, 6):
        manager.save(step, good)
    assert sorted(p.name for p in tmp_path.glob("model.ckpt-*.index")) == ["model.ckpt-5.index",
                                                                             "model.ckpt-6.index"]


def _run_subprocess(spec, tmp_path, name):
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(HELPERS.parent)}
    return subprocess.run([sys.executable, str(HELPERS), str(spec_file)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_resume_after_kill_equals_straight_run(data, trained, tmp_path):
    """4 steps straight (the `trained` run) == 2 steps, SIGKILL right after the step-2 checkpoint,
    resume to 4: same loss at every step and the same final variables and slots. Dropout is on
    and the input shuffled, so the dropout masks and the data position must both be restored."""
    _, straight, straight_dir = trained
    out = tmp_path / "killed"
    opts = dataclass_dict(_opts(data, out))
    proc = _run_subprocess({"runs": [{"opts": opts, "kill_at_step": 2,
                                      "result_file": str(tmp_path / "never.json")}]}, tmp_path, "kill")
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not (tmp_path / "never.json").exists()
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-2")

    resumed = Trainer(_opts(data, out))
    assert "resumed from" in resumed.restore_or_initialize()
    assert resumed.global_step == 2
    result = resumed.train()
    assert result.global_step == 4
    np.testing.assert_allclose(result.losses, straight.losses[2:], rtol=1e-5)
    a, b = numpy_values(str(straight_dir)), numpy_values(str(out))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-7, err_msg=name)


def dataclass_dict(opts):
    import dataclasses
    return dataclasses.asdict(opts)


def test_export_checks_vocab_and_config(trained, tmp_path):
    out = trained[2]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n")
    with pytest.raises(ValueError, match="has 2 entries, bert config vocab_size is 97"):
        export_model(str(out), BertConfig(**TINY), str(vocab), str(tmp_path / "x"))
    with pytest.raises(ValueError, match=r"'bert/encoder/layer_0/intermediate/dense/kernel'.*\[16, 32\].*\[16, 64\]"):
        export_model(str(out), BertConfig(**{**TINY, "intermediate_size": 64}), None,
                     str(tmp_path / "y"))


def test_eval_only_reads_the_model_of_any_optimizer(data, trained):
    """--do_eval alone restores model variables and global_step only, so a LAMB run's checkpoint
    evaluates whatever --optimizer says; the metrics are Google's eval metrics."""
    trainer, _, out = trained
    ev = Trainer(_opts(data, out, optimizer="adamw", do_train=False, do_eval=True,
                       eval_batch_size=8, max_eval_steps=2)).evaluate()
    assert ev["global_step"] == 4
    assert set(ev) == {"global_step", "loss", "masked_lm_accuracy", "masked_lm_loss",
                       "next_sentence_accuracy", "next_sentence_loss"}
    assert all(np.isfinite(v) for v in ev.values())
    assert ev["loss"] == pytest.approx(ev["masked_lm_loss"] + ev["next_sentence_loss"], rel=0.1)
