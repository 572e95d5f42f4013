"""Strategies: MirroredStrategy over 2 logical CPUs == one device; the XLA (jit_compile) step; TPU errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import TrainOptions, Trainer  # noqa: E402
from wwm_trainer.checkpoint import numpy_values  # noqa: E402
from wwm_trainer.distribute import NoTPUError, resolve_strategy  # noqa: E402

from trainer_helpers import TINY, write_config, write_synthetic_records  # noqa: E402

HELPERS = Path(__file__).resolve().parent / "trainer_helpers.py"
SEQ, PRED = 32, 5


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One device, 2 accumulation micro-batches of 4 per step (global batch 8). Dropout is off so
    that the XLA run can be compared too (XLA's stateless RNG draws other bits than TF's); that
    replica r and micro-batch r draw the same masks is checked in test_dropout_seed_mapping."""
    d = tmp_path_factory.mktemp("dist")
    files = [write_synthetic_records(d / f"part-{i}.tfrecord", 64, seq_len=SEQ, max_pred=PRED,
                                     vocab_size=TINY["vocab_size"], seed=10 + i) for i in range(2)]
    config = write_config(d / "bert_config.json", num_hidden_layers=1, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0)
    kw = dict(bert_config_file=config, input_file=",".join(files),
              do_train=True, max_seq_length=SEQ, max_predictions_per_seq=PRED, train_batch_size=8,
              learning_rate=1e-2, num_train_steps=4, num_warmup_steps=1, save_checkpoints_steps=4,
              iterations_per_loop=2, log_every_loop=False)
    opts = TrainOptions(**kw, output_dir=str(d / "one_device"), strategy="one_device",
                        gradient_accumulation_steps=2)
    result = Trainer(opts).train()
    return {"dir": d, "kw": kw, "result": result}


def test_mirrored_two_cpus_equals_one_device(reference, tmp_path):
    """2 replicas x 4 examples, gradients all-reduced (mean) before clipping and the trust ratio,
    equals 1 device x 2 accumulated micro-batches of 4: same data split (replica r <-> micro-batch
    r), same dropout masks, same per-replica loss normalisation as run_pretraining on TPU cores."""
    opts = {**reference["kw"], "output_dir": str(tmp_path / "mirrored"), "strategy": "auto"}
    spec = {"logical_cpus": 2, "runs": [{"opts": opts, "strategy": "mirrored",
                                         "result_file": str(tmp_path / "mirrored.json")}]}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(HELPERS.parent)}
    proc = subprocess.run([sys.executable, str(HELPERS), str(spec_file)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mirrored = json.loads((tmp_path / "mirrored.json").read_text())
    assert mirrored["replicas"] == 2
    np.testing.assert_allclose(mirrored["losses"], reference["result"].losses, rtol=1e-5)
    a = numpy_values(str(reference["dir"] / "one_device"))
    b = numpy_values(str(tmp_path / "mirrored"))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_jit_compiled_step_matches(reference, tmp_path):
    """--jit_compile puts forward + backward under XLA (what a TPU always does): it compiles and
    trains to the same numbers."""
    opts = TrainOptions(**reference["kw"], output_dir=str(tmp_path / "jit"), strategy="one_device",
                        gradient_accumulation_steps=2, jit_compile=True)
    result = Trainer(opts).train()
    np.testing.assert_allclose(result.losses, reference["result"].losses, rtol=1e-4)
    a = numpy_values(str(reference["dir"] / "one_device"))
    b = numpy_values(str(tmp_path / "jit"))
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_dropout_seed_mapping(reference, tmp_path):
    """Dropout masks are keyed by (seed, global_step, replica * accumulation + micro-batch), so
    2 replicas x 1 and 1 replica x 2 micro-batches draw the same masks, and a resumed run draws the
    masks of the straight run."""
    trainer = Trainer(TrainOptions(**reference["kw"], output_dir=str(tmp_path / "o"),
                                   strategy="one_device"))
    a = trainer._dropout_seed(tf.constant(1, tf.int64)).numpy()
    assert not np.array_equal(a, trainer._dropout_seed(tf.constant(0, tf.int64)).numpy())
    trainer.optimizer.global_step.assign(7)
    b = trainer._dropout_seed(tf.constant(1, tf.int64)).numpy()
    assert not np.array_equal(a, b)
    other = Trainer(TrainOptions(**reference["kw"], output_dir=str(tmp_path / "p"),
                                 strategy="one_device"))
    other.optimizer.global_step.assign(7)
    np.testing.assert_array_equal(other._dropout_seed(tf.constant(1, tf.int64)).numpy(), b)


@pytest.mark.parametrize("name", [None, "local"])
def test_tpu_requested_without_tpu(name):
    with pytest.raises(NoTPUError, match=f"none was found for --tpu_name={name!r}"):
        resolve_strategy("tpu", tpu_name=name)


def test_auto_strategy_on_cpu_is_one_device():
    strategy = resolve_strategy("auto")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    with pytest.raises(ValueError, match=r"--strategy must be one of \[.*'one_device'\], got 'horovod'"):
        resolve_strategy("horovod")


def test_options_dataclass_round_trips_through_json(reference):
    opts = TrainOptions(**reference["kw"], output_dir="x")
    assert TrainOptions(**json.loads(json.dumps(dataclasses.asdict(opts)))) == opts
