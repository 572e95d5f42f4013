"""Mixed precision: float16 with dynamic loss scaling (skip, halve, grow, resume), and where the
bfloat16 / float16 models round (the logits)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import BertConfig, BertPretrainingModel, Trainer  # noqa: E402
from wwm_trainer.checkpoint import numpy_values  # noqa: E402
from wwm_trainer.cli import main as cli_main  # noqa: E402
from wwm_trainer.optimization import DynamicLossScale  # noqa: E402

from trainer_helpers import (TINY, checkpoint_digest, tiny_options, write_config,  # noqa: E402
                             write_synthetic_records)

HELPERS = Path(__file__).resolve().parent / "trainer_helpers.py"
SEQ, PRED = 32, 5
SCALE_NAMES = DynamicLossScale.NAMES


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("precision")
    files = [write_synthetic_records(d / f"part-{i}.tfrecord", 64, seq_len=SEQ, max_pred=PRED,
                                     vocab_size=TINY["vocab_size"], seed=i) for i in range(2)]
    return {"dir": d, "input": ",".join(files), "config": write_config(d / "bert_config.json"),
            "no_dropout": write_config(d / "no_dropout.json", hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0)}


def _opts(data, out, **kw):
    return tiny_options(**{"bert_config_file": data["config"], "input_file": data["input"],
                           "output_dir": out, "max_seq_length": SEQ,
                           "max_predictions_per_seq": PRED, **kw})


def _model_values(trainer):
    return {n: v.numpy() for n, v in trainer.model.variables_by_name.items()}


# ----------------------------------------------------------------------------- loss scaling
def test_forced_overflow_skips_the_step(data, tmp_path):
    """A loss scale of 2^60 makes the float16 backward pass overflow (a real Inf, not a mock): the
    step changes no variable and no slot, the scale halves, the counters say so, the step counts."""
    trainer = Trainer(_opts(data, tmp_path / "out", precision="float16",
                            loss_scale_initial=2.0 ** 60, num_train_steps=1,
                            save_checkpoints_steps=1, iterations_per_loop=1))
    before = _model_values(trainer)
    result = trainer.train()
    assert np.isfinite(result.losses[0])
    assert result.metrics["skipped_steps"] == 1 and result.metrics["loss_scale"] == 2.0 ** 59
    saved = numpy_values(str(tmp_path / "out"))
    for name, value in before.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)
    slots = [n for n in saved if n.endswith(("/lamb_m", "/lamb_v"))]
    assert slots and all(not np.any(saved[n]) for n in slots)
    assert int(saved["global_step"]) == 1
    assert saved["fp16_loss_scale/scale"] == np.float32(2.0 ** 59)
    assert int(saved["fp16_loss_scale/good_steps"]) == 0
    assert int(saved["fp16_loss_scale/skipped_steps"]) == 1
    # float16 compute: variables, slots and the scale are float32 in the checkpoint
    dtypes = tf.train.load_checkpoint(str(tmp_path / "out")).get_variable_to_dtype_map()
    assert {d for n, d in dtypes.items() if n not in ("global_step", *SCALE_NAMES[1:])} == {tf.float32}


def test_loss_scale_recovers_from_overflow_and_grows(data, tmp_path):
    """From 2^20 (too large for this model: its gradients overflow float16 above ~2^17) the scale
    halves on each overflowing step, then the steps apply; with growth after 2 good steps it
    doubles again and overflows again, so the run alternates. Every state is checked per step."""
    states = []
    trainer = Trainer(_opts(data, tmp_path / "out", precision="float16", loss_scale_initial=2.0 ** 20,
                            loss_scale_growth_steps=2, num_train_steps=8, save_checkpoints_steps=1,
                            iterations_per_loop=1))
    scale = trainer.loss_scale
    previous = {"values": _model_values(trainer), "scale": 2.0 ** 20, "good": 0, "skipped": 0}

    def on_checkpoint(step, prefix):
        now = {"values": _model_values(trainer), "scale": float(scale.scale.numpy()),
               "good": int(scale.good_steps.numpy()), "skipped": int(scale.skipped_steps.numpy())}
        skipped = now["skipped"] - previous["skipped"]
        unchanged = all(np.array_equal(now["values"][n], v) for n, v in previous["values"].items())
        assert skipped in (0, 1)
        assert unchanged == bool(skipped), step  # a skipped step changes nothing, an applied one does
        if skipped:
            assert now["scale"] == previous["scale"] / 2 and now["good"] == 0
        elif previous["good"] + 1 == 2:
            assert now["scale"] == previous["scale"] * 2 and now["good"] == 0
        else:
            assert now["scale"] == previous["scale"] and now["good"] == previous["good"] + 1
        states.append((step, skipped, now["scale"]))
        previous.update(now)

    result = trainer.train(on_checkpoint=on_checkpoint)
    assert len(states) == 8 and np.all(np.isfinite(result.losses))
    skips = [s for _, s, _ in states]
    assert skips[0] == 1 and sum(skips) >= 2 and skips.count(0) >= 4, states
    assert any(b > a for (_, _, a), (_, _, b) in zip(states, states[1:])), states  # grew


def _run_subprocess(spec, tmp_path, name):
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(HELPERS.parent)}
    return subprocess.run([sys.executable, str(HELPERS), str(spec_file)], env=env,
                          capture_output=True, text=True, timeout=600)


def test_float16_kill_and_resume_equals_straight_run(data, tmp_path):
    """6 steps straight == SIGKILL right after the step-4 checkpoint, then resume to 6: same losses,
    bit-identical checkpoint, loss scale and counters included. The scale starts too high and grows
    every 2 good steps, so skips, halvings and doublings happen on both sides of the kill."""
    kw = dict(precision="float16", loss_scale_initial=2.0 ** 20, loss_scale_growth_steps=2,
              num_train_steps=6, save_checkpoints_steps=2, iterations_per_loop=2)
    straight = dataclasses.asdict(_opts(data, tmp_path / "straight", **kw))
    killed = dataclasses.asdict(_opts(data, tmp_path / "killed", **kw))
    proc = _run_subprocess({"runs": [
        {"opts": straight, "result_file": str(tmp_path / "straight.json")},
        {"opts": killed, "kill_at_step": 4, "result_file": str(tmp_path / "never.json")}]},
        tmp_path, "kill")
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert tf.train.latest_checkpoint(str(tmp_path / "killed")).endswith("model.ckpt-4")
    proc = _run_subprocess({"runs": [{"opts": killed, "result_file": str(tmp_path / "resumed.json")}]},
                           tmp_path, "resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((tmp_path / "straight.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert b["global_step"] == 6 and b["losses"] == a["losses"][4:]
    assert b["digest"] == a["digest"]
    values = numpy_values(str(tmp_path / "straight"))
    assert int(values["fp16_loss_scale/skipped_steps"]) >= 2  # the scale did move in this run
    assert checkpoint_digest(tmp_path / "killed") == checkpoint_digest(tmp_path / "straight")


def test_float16_with_a_safe_scale_agrees_with_float32(data, tmp_path):
    """With a loss scale (2^8) that never overflows, float16 and float32 follow the same loss curve
    to float16 precision (2^-11 relative; measured: 4e-6) over 8 LAMB steps, dropout off."""
    losses = {}
    for precision in ("float32", "float16"):
        trainer = Trainer(_opts(data, tmp_path / precision, bert_config_file=data["no_dropout"],
                                precision=precision, loss_scale_initial=2.0 ** 8,
                                loss_scale_growth_steps=10 ** 9, num_train_steps=8,
                                save_checkpoints_steps=8, iterations_per_loop=4))
        result = trainer.train()
        losses[precision] = np.array(result.losses)
        if precision == "float16":
            assert result.metrics["skipped_steps"] == 0
    assert len(losses["float16"]) == 8
    np.testing.assert_allclose(losses["float16"], losses["float32"], rtol=2.0 ** -11)
    assert not np.array_equal(losses["float16"], losses["float32"])  # it did compute in float16


def test_checkpoints_without_loss_scale_still_load(data, tmp_path):
    """An float32 run's checkpoint resumes under --precision=float16 (the scale starts at
    --loss_scale_initial), and a float16 checkpoint resumes under float32 (the scale is ignored)."""
    out = tmp_path / "out"
    Trainer(_opts(data, out, num_train_steps=2)).train()
    fp16 = Trainer(_opts(data, out, precision="float16", num_train_steps=4,
                         loss_scale_initial=2.0 ** 10))
    assert "resumed from" in fp16.restore_or_initialize()
    assert fp16.global_step == 2 and float(fp16.loss_scale.scale.numpy()) == 2.0 ** 10
    fp16.train()
    names = dict(tf.train.list_variables(str(out)))
    assert all(n in names for n in SCALE_NAMES)
    fp32 = Trainer(_opts(data, out, num_train_steps=6))
    assert "resumed from" in fp32.restore_or_initialize() and fp32.global_step == 4
    assert fp32.train().global_step == 6


def test_float16_cli_and_bad_values(data, tmp_path, capsys):
    base = [f"--bert_config_file={data['config']}", f"--input_file={data['input']}",
            f"--max_seq_length={SEQ}", f"--max_predictions_per_seq={PRED}", "--train_batch_size=8",
            "--num_train_steps=2", "--num_warmup_steps=0", "--strategy=one_device", "--do_train"]
    assert cli_main(base + [f"--output_dir={tmp_path / 'ok'}", "--precision=float16",
                            "--loss_scale_initial=1024", "--loss_scale_growth_steps=100"]) == 0
    assert numpy_values(str(tmp_path / "ok"))["fp16_loss_scale/scale"] == np.float32(1024)
    assert cli_main(base + [f"--output_dir={tmp_path / 'bad'}", "--precision=float16",
                            "--use_tpu"]) == 2
    err = capsys.readouterr().err
    assert "--precision=float16 is for GPUs without bfloat16" in err, err
    # out-of-range values are refused while the command line is parsed (exit status 2)
    for extra, match in [
        (["--precision=float16", "--loss_scale_growth_steps=0"],
         r"argument --loss_scale_growth_steps: must be an integer in \[1, 1000000000\], got 0"),
        (["--precision=float16", "--loss_scale_initial=0"],
         r"argument --loss_scale_initial: must be a number in \(0, 3e\+38\), got 0.0"),
    ]:
        with pytest.raises(SystemExit) as e:
            cli_main(base + [f"--output_dir={tmp_path / 'bad'}"] + extra)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert re.search(match, err), err
    # and TrainOptions checks them for Python callers
    from wwm_trainer import TrainOptions

    for field, value, match in [
            ("loss_scale_growth_steps", 0, "--loss_scale_growth_steps must be a positive integer, "
                                           "got 0"),
            ("loss_scale_initial", 0.0, r"--loss_scale_initial must be in \(0, 3e38\), got 0.0")]:
        opts = TrainOptions(bert_config_file=data["config"], input_file=data["input"],
                            output_dir=str(tmp_path / "api"), do_train=True,
                            precision="float16", **{field: value})
        with pytest.raises(ValueError, match=match):
            opts.validate()


# ----------------------------------------------------------------------------- logits
def _logits(compute_dtype, config):
    model = BertPretrainingModel(BertConfig(**config), compute_dtype=compute_dtype, seed=3)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config["vocab_size"], (4, SEQ)).astype(np.int32)
    mask = np.ones((4, SEQ), np.int32)
    seg = np.zeros((4, SEQ), np.int32)
    pos = np.tile(np.arange(1, PRED + 1, dtype=np.int32), (4, 1))
    out = model(ids, mask, seg, pos)
    bias = model.variables_by_name["cls/predictions/output_bias"].numpy()
    return out.mlm_logits.numpy() - bias, out.nsp_logits.numpy()


def _representable(x, dtype):
    return np.mean(tf.cast(tf.cast(x, dtype), tf.float32).numpy() == x)


def test_bfloat16_logits_are_a_float32_matmul():
    """Under bfloat16 the MLM logits come out of a float32 matmul (the float32 LayerNorm output
    times the float32 table): they are not bfloat16 values, unlike a bfloat16 matmul's (before
    this check, every logit was). Under float16 the output matmul runs in float16, as documented."""
    config = {**TINY, "vocab_size": 1000}
    mlm, nsp = _logits(tf.bfloat16, config)
    assert mlm.dtype == np.float32 and nsp.dtype == np.float32
    assert _representable(mlm, tf.bfloat16) < 0.2
    assert _representable(nsp, tf.bfloat16) < 0.5
    fp32, _ = _logits(tf.float32, config)
    # what remains is the encoder's bfloat16 rounding: a few parts in a thousand of the logits
    assert np.max(np.abs(mlm - fp32)) < 0.02 * np.max(np.abs(fp32))
    mlm16, _ = _logits(tf.float16, config)
    assert _representable(mlm16, tf.float16) == 1.0


def test_float16_on_two_replicas_equals_two_micro_batches(data, tmp_path):
    """The loss scale is one state for all replicas: float16 on a MirroredStrategy over 2 logical
    CPUs follows one device with 2 accumulation micro-batches, skipped steps, halvings and
    doublings included (an overflow on either replica skips the step on both)."""
    kw = dict(precision="float16", loss_scale_initial=2.0 ** 20, loss_scale_growth_steps=2,
              num_train_steps=6, save_checkpoints_steps=6, iterations_per_loop=3)
    mirrored = dataclasses.asdict(_opts(data, tmp_path / "mirrored", **kw))
    one = dataclasses.asdict(_opts(data, tmp_path / "one", gradient_accumulation_steps=2, **kw))
    proc = _run_subprocess({"logical_cpus": 2, "runs": [
        {"opts": mirrored, "strategy": "mirrored", "result_file": str(tmp_path / "mirrored.json")},
        {"opts": one, "strategy": "one_device", "result_file": str(tmp_path / "one.json")}]},
        tmp_path, "mirrored")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "mirrored.json").read_text())
    assert b["replicas"] == 2
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=1e-5)
    va, vb = numpy_values(str(tmp_path / "one")), numpy_values(str(tmp_path / "mirrored"))
    assert int(va["fp16_loss_scale/skipped_steps"]) >= 2
    for name in SCALE_NAMES:
        assert va[name] == vb[name], name
    for name in va:
        np.testing.assert_allclose(vb[name], va[name], rtol=1e-4, atol=1e-6, err_msg=name)
