"""Train-step cost of our LAMB vs our AdamWeightDecay vs keras.optimizers.Lamb, same model, same run.

Run:  pytest benchmarks/bench_trainer.py --benchmark-columns=min,median,rounds
      (add -k tiny for the quick half; base at seq 128 takes a few minutes on 2 CPU cores)

Every variant runs the same tf.function step on the same BERT (Google variable names), the same
fixed batch (seq 128, 20 predictions) and the same variables: forward with dropout, MLM + NSP loss,
gradients, global-norm clipping at 1.0, update. Only the update differs:
  lamb       wwm_trainer.Lamb (ymcui/BERT-wwm defaults: weight decay 0.01, trust ratio on all)
  adamw      wwm_trainer.AdamWeightDecay (Google's BERT optimizer)
  keras_lamb keras.optimizers.Lamb(weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0)
`*_update` benchmarks time the optimizer update alone (fixed gradients), which is where the
variants actually differ. `test_targets[*]` time the variants interleaved (round-robin, so load
on a shared machine hits all alike) and check: LAMB step <= 1.10 x AdamW step, LAMB update <=
Keras Lamb update, LAMB step <= 1.02 x Keras Lamb step (2% for timing noise: the forward and
backward are identical). Numbers go to benchmark.extra_info (ms/step, examples/s, ratios).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from wwm_trainer import (AdamWeightDecay, BertConfig, BertPretrainingModel, Lamb,  # noqa: E402
                         WarmupPolynomialDecay, pretraining_loss_and_metrics)

SEQ, PRED = 128, 20
CONFIGS = {
    "tiny": dict(vocab_size=21128, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=512, max_position_embeddings=512, type_vocab_size=2),
    "base": dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2),
}
BATCH = {"tiny": 32, "base": 4}  # per step on a 2-core CPU; the update cost does not depend on it
ROUNDS = {"tiny": 15, "base": 5}
KINDS = ("lamb", "adamw", "keras_lamb")


def _batch(cfg, batch, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(SEQ // 2, SEQ + 1, batch)
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(106, cfg["vocab_size"], (batch, SEQ)).astype(np.int32) * mask
    seg = ((np.arange(SEQ)[None] >= lengths[:, None] // 2) & (mask == 1)).astype(np.int32)
    pos = np.stack([np.sort(rng.choice(np.arange(1, n - 1), PRED, replace=False)) for n in lengths])
    return {"input_ids": ids, "input_mask": mask, "segment_ids": seg,
            "masked_lm_positions": pos.astype(np.int32),
            "masked_lm_ids": rng.integers(106, cfg["vocab_size"], (batch, PRED)).astype(np.int32),
            "masked_lm_weights": np.ones((batch, PRED), np.float32),
            "next_sentence_labels": rng.integers(0, 2, (batch, 1)).astype(np.int32)}


class Setup:
    """Model, batch and the three compiled steps (full step and update-only) for one config."""

    def __init__(self, name):
        self.name = name
        cfg = CONFIGS[name]
        self.batch_size = BATCH[name]
        self.model = BertPretrainingModel(BertConfig(**cfg))
        self.variables = self.model.variables_by_name
        self.names = list(self.variables)
        self.features = {k: tf.constant(v) for k, v in _batch(cfg, self.batch_size).items()}
        self.fixed_grads = [tf.random.stateless_normal(v.shape, seed=[1, i]) * 1e-3
                            for i, v in enumerate(self.variables.values())]
        self.step_fns, self.update_fns = {}, {}
        schedule = WarmupPolynomialDecay(1e-4, 100000, 10000)
        for kind in KINDS:
            apply = self._make_apply(kind, schedule)
            self.step_fns[kind] = tf.function(lambda apply=apply: self._step(apply))
            self.update_fns[kind] = tf.function(lambda apply=apply: apply(self.fixed_grads))

    def _make_apply(self, kind, schedule):
        if kind == "keras_lamb":
            opt = keras.optimizers.Lamb(learning_rate=1e-4, weight_decay=0.01, epsilon=1e-6,
                                        global_clipnorm=1.0)
            opt.exclude_from_weight_decay(var_names=["LayerNorm", "layer_norm", "bias"])
            variables = list(self.variables.values())
            opt.build(variables)

            def apply(grads):
                opt.apply_gradients(zip(grads, variables))
                return tf.constant(0.0)
            return apply
        opt = Lamb(schedule) if kind == "lamb" else AdamWeightDecay(schedule)
        opt.build(self.variables)

        def apply(grads):
            return opt.apply_gradients(list(zip(grads, self.names)), self.variables)
        return apply

    def _step(self, apply):
        f = self.features
        with tf.GradientTape() as tape:
            out = self.model(f["input_ids"], f["input_mask"], f["segment_ids"],
                             f["masked_lm_positions"], training=True,
                             dropout_seed=tf.constant([1, 2], tf.int64))
            loss = pretraining_loss_and_metrics(out, f)["loss"]
        grads = tape.gradient(loss, list(self.variables.values()))
        apply(grads)
        return loss


_SETUPS = {}


def _setup(name) -> Setup:
    if name not in _SETUPS:
        _SETUPS[name] = Setup(name)
    return _SETUPS[name]


def _run(fn):
    return float(fn().numpy())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_train_step(benchmark, config, kind):
    s = _setup(config)
    fn = s.step_fns[kind]
    loss = benchmark.pedantic(_run, args=(fn,), rounds=ROUNDS[config], iterations=1,
                              warmup_rounds=1)
    assert np.isfinite(loss)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(config=config, optimizer=kind, batch=s.batch_size, seq=SEQ,
                                ms_per_step=round(median * 1e3, 2),
                                examples_per_s=round(s.batch_size / median, 2))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_update(benchmark, config, kind):
    s = _setup(config)
    fn = s.update_fns[kind]
    benchmark.pedantic(_run, args=(fn,), rounds=ROUNDS[config] * 2, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(config=config, optimizer=kind,
                                ms_per_update=round(benchmark.stats.stats.median * 1e3, 2))


def _interleaved(fns: dict, rounds: int) -> dict:
    for fn in fns.values():  # compile + warm
        _run(fn)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for kind, fn in fns.items():
            t0 = time.perf_counter()
            _run(fn)
            times[kind].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_targets(benchmark, config):
    """Round-robin timing of the three steps (and updates) and the issue's targets."""
    s = _setup(config)
    step = _interleaved(s.step_fns, ROUNDS[config])
    update = _interleaved(s.update_fns, ROUNDS[config] * 2)
    benchmark.pedantic(_run, args=(s.step_fns["lamb"],), rounds=1, iterations=1)
    info = {"config": config, "batch": s.batch_size, "seq": SEQ}
    for kind in KINDS:
        info[f"{kind}_ms_per_step"] = round(step[kind] * 1e3, 2)
        info[f"{kind}_examples_per_s"] = round(s.batch_size / step[kind], 2)
        info[f"{kind}_ms_per_update"] = round(update[kind] * 1e3, 2)
    info["lamb_over_adamw_step"] = round(step["lamb"] / step["adamw"], 3)
    info["lamb_over_keras_step"] = round(step["lamb"] / step["keras_lamb"], 3)
    info["lamb_over_adamw_update"] = round(update["lamb"] / update["adamw"], 3)
    info["lamb_over_keras_update"] = round(update["lamb"] / update["keras_lamb"], 3)
    benchmark.extra_info.update(info)
    print(f"\n{config}: {info}")
    assert info["lamb_over_adamw_step"] <= 1.10
    # the update is where the two LAMBs differ: ours must be cheaper outright; over a whole step
    # (forward/backward identical) allow 2% for timing noise on a shared machine
    assert info["lamb_over_keras_update"] <= 1.0
    assert info["lamb_over_keras_step"] <= 1.02
