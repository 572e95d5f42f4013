"""BERT model: Google's variable names and shapes, forward pass and losses against NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import BertConfig, BertPretrainingModel, pretraining_loss_and_metrics  # noqa: E402
from wwm_trainer.modeling import gelu_tanh  # noqa: E402

from wwm_trainer.modeling import google_variable_shapes  # noqa: E402

from trainer_helpers import (BASE_CONFIG, TINY, google_base_names, google_names,  # noqa: E402
                             np_bert_pretraining, np_log_softmax)


def _inputs(cfg, batch=3, seq=12, preds=4, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg["vocab_size"], (batch, seq)).astype(np.int32)
    lengths = [seq, seq - 3, 7][:batch]
    mask = (np.arange(seq)[None] < np.array(lengths)[:, None]).astype(np.int32)
    seg = np.zeros((batch, seq), np.int32)
    seg[:, seq // 2:] = 1
    pos = np.stack([np.sort(rng.choice(np.arange(1, L - 1), preds, replace=False)) for L in lengths])
    pos[2, 2:] = 0  # padded predictions point at [CLS] with weight 0, as in Google's records
    mids = rng.integers(0, cfg["vocab_size"], (batch, preds)).astype(np.int32)
    wts = np.ones((batch, preds), np.float32)
    wts[2, 2:] = 0.0
    nsp = np.array([[0], [1], [1]], np.int32)[:batch]
    return dict(input_ids=ids, input_mask=mask, segment_ids=seg, masked_lm_positions=pos.astype(np.int32),
                masked_lm_ids=mids, masked_lm_weights=wts, next_sentence_labels=nsp)


def test_variable_layout_is_googles():
    """The layout function the model builds from, against the release's literal list, for base
    (206 variables) and large; and a built model's actual variables against it."""
    assert google_variable_shapes(BertConfig.from_dict(BASE_CONFIG)) == google_base_names()
    assert len(google_base_names()) == 206
    large = {**BASE_CONFIG, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
             "intermediate_size": 4096}
    assert google_variable_shapes(BertConfig.from_dict(large)) == google_names(large)
    model = BertPretrainingModel(BertConfig(**TINY))
    got = {v.name.split(":")[0]: list(v.shape) for v in model.variables_by_name.values()}
    assert got == google_names(TINY)
    assert all(v.dtype == tf.float32 for v in model.variables_by_name.values())


@pytest.mark.slow
def test_base_model_variables_are_googles():
    model = BertPretrainingModel(BertConfig.from_dict(BASE_CONFIG))
    got = {v.name.split(":")[0]: list(v.shape) for v in model.variables_by_name.values()}
    assert got == google_base_names()


def test_forward_and_losses_equal_numpy():
    cfg = dict(TINY)
    model = BertPretrainingModel(BertConfig(**cfg), seed=7)
    # non-trivial LayerNorm/bias values so that every parameter matters
    rng = np.random.default_rng(3)
    for name, var in model.variables_by_name.items():
        if name.endswith(("bias", "beta")):
            var.assign(rng.standard_normal(var.shape).astype(np.float32) * 0.1)
        elif name.endswith("gamma"):
            var.assign(1.0 + rng.standard_normal(var.shape).astype(np.float32) * 0.1)
        else:
            var.assign(rng.standard_normal(var.shape).astype(np.float32) * 0.2)
    x = _inputs(cfg)
    out = model(x["input_ids"], x["input_mask"], x["segment_ids"], x["masked_lm_positions"])
    w = {n: v.numpy().astype(np.float64) for n, v in model.variables_by_name.items()}
    seq, pooled, mlm, nsp = np_bert_pretraining(w, cfg, x["input_ids"], x["input_mask"],
                                                x["segment_ids"], x["masked_lm_positions"])
    np.testing.assert_allclose(out.sequence_output.numpy(), seq, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(out.pooled_output.numpy(), pooled, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(out.mlm_logits.numpy(), mlm, rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(out.nsp_logits.numpy(), nsp, rtol=1e-4, atol=5e-5)

    m = pretraining_loss_and_metrics(out, {k: tf.constant(v) for k, v in x.items()})
    ids, wts = x["masked_lm_ids"].reshape(-1), x["masked_lm_weights"].reshape(-1)
    nll = -np_log_softmax(mlm)[np.arange(len(ids)), ids]
    mlm_loss = np.sum(wts * nll) / (np.sum(wts) + 1e-5)  # run_pretraining.py's normaliser
    labels = x["next_sentence_labels"].reshape(-1)
    nsp_loss = np.mean(-np_log_softmax(nsp)[np.arange(len(labels)), labels])
    assert float(m["masked_lm_loss"]) == pytest.approx(mlm_loss, rel=1e-5)
    assert float(m["next_sentence_loss"]) == pytest.approx(nsp_loss, rel=1e-5)
    assert float(m["loss"]) == pytest.approx(mlm_loss + nsp_loss, rel=1e-5)
    acc = np.sum(wts * (mlm.argmax(-1) == ids)) / np.sum(wts)
    assert float(m["masked_lm_accuracy"]) == pytest.approx(acc)
    assert float(m["next_sentence_accuracy"]) == pytest.approx(np.mean(nsp.argmax(-1) == labels))
    no_nsp = pretraining_loss_and_metrics(out, {k: tf.constant(v) for k, v in x.items()}, use_nsp=False)
    assert float(no_nsp["loss"]) == pytest.approx(mlm_loss, rel=1e-5)


def test_dropout_is_reproducible_and_seeded():
    cfg = BertConfig(**TINY)
    model = BertPretrainingModel(cfg)
    x = _inputs(TINY)
    args = (x["input_ids"], x["input_mask"], x["segment_ids"], x["masked_lm_positions"])

    def run(seed, training=True):
        return model(*args, training=training, dropout_seed=tf.constant(seed, tf.int64)).mlm_logits.numpy()

    np.testing.assert_array_equal(run([1, 2]), run([1, 2]))
    assert np.max(np.abs(run([1, 2]) - run([1, 3]))) > 1e-4
    np.testing.assert_array_equal(run([1, 2], training=False), run([5, 6], training=False))


def test_bfloat16_compute_keeps_float32_variables_and_losses():
    cfg = BertConfig(**TINY)
    f32 = BertPretrainingModel(cfg, seed=3)
    bf16 = BertPretrainingModel(cfg, compute_dtype=tf.bfloat16, seed=3)
    x = _inputs(TINY)
    args = (x["input_ids"], x["input_mask"], x["segment_ids"], x["masked_lm_positions"])
    a, b = f32(*args), bf16(*args)
    assert b.sequence_output.dtype == tf.bfloat16
    assert b.mlm_logits.dtype == tf.float32 and b.nsp_logits.dtype == tf.float32
    np.testing.assert_allclose(b.mlm_logits.numpy(), a.mlm_logits.numpy(), atol=0.05)
    feats = {k: tf.constant(v) for k, v in x.items()}
    with tf.GradientTape() as tape:
        loss = pretraining_loss_and_metrics(bf16(*args), feats)["loss"]
    grads = tape.gradient(loss, list(bf16.variables_by_name.values()))
    assert loss.dtype == tf.float32
    assert all(g is not None and g.dtype == tf.float32 for g in grads)
    assert all(v.dtype == tf.float32 for v in bf16.variables_by_name.values())


def test_gelu_variants():
    x = np.linspace(-4, 4, 41).astype(np.float32)
    from trainer_helpers import np_gelu
    from wwm_trainer.modeling import gelu
    np.testing.assert_allclose(gelu(tf.constant(x)).numpy(), np_gelu(x.astype(np.float64)), atol=1e-6)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(gelu_tanh(tf.constant(x)).numpy(), tanh_form, atol=1e-6)


def test_nsp_free_training_leaves_pooler_and_nsp_head_out():
    model = BertPretrainingModel(BertConfig(**TINY))
    names = model.trainable_names(use_nsp=False)
    assert not any(n.startswith(("bert/pooler/", "cls/seq_relationship/")) for n in names)
    assert "cls/predictions/output_bias" in names
    assert len(model.trainable_names(use_nsp=True)) == len(model.variables_by_name)


def test_config_round_trip_keeps_googles_extra_keys(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(BASE_CONFIG))
    cfg = BertConfig.from_json_file(str(path))
    assert cfg.extra["pooler_type"] == "first_token_transform"
    out = tmp_path / "out.json"
    cfg.to_json_file(str(out))
    assert json.loads(out.read_text()) == BASE_CONFIG


@pytest.mark.parametrize("overrides, match", [
    (dict(hidden_size=10, num_attention_heads=3), r"hidden_size \(10\) must be a multiple of num_attention_heads \(3\)"),
    (dict(hidden_act="swish"), r"hidden_act must be one of .* got 'swish'"),
    (dict(vocab_size=0), "vocab_size must be a positive integer, got 0"),
    (dict(hidden_dropout_prob=1.0), r"hidden_dropout_prob must be in \[0, 1\), got 1.0"),
])
def test_bad_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        BertConfig(**{**TINY, **overrides})


def test_sequence_longer_than_position_table():
    model = BertPretrainingModel(BertConfig(**{**TINY, "max_position_embeddings": 8}))
    x = _inputs(TINY, seq=12)
    with pytest.raises(ValueError, match="sequence length 12 exceeds max_position_embeddings 8"):
        model.encode(x["input_ids"], x["input_mask"], x["segment_ids"])
