"""LAMB / AdamWeightDecay / schedule against an independent NumPy implementation of LAMB.md."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from wwm_trainer import AdamWeightDecay, BertConfig, Lamb, WarmupPolynomialDecay  # noqa: E402
from wwm_trainer.modeling import google_variable_shapes  # noqa: E402

from trainer_helpers import TINY, google_excluded, np_adam_family, np_schedule  # noqa: E402

STEPS = 6
LR, TOTAL, WARMUP = 2e-2, 10, 3


def _variables(seed=0):
    """Tiny BERT's real variable set (names drive the exclusions); biases/beta start at 0 as in
    Google's init, so the r=1 guard for zero-norm tensors is exercised on step 1."""
    rng = np.random.default_rng(seed)
    shapes = google_variable_shapes(BertConfig(**{**TINY, "num_hidden_layers": 1}))
    values = {}
    for name, shape in shapes.items():
        leaf = name.rsplit("/", 1)[1]
        if leaf in ("bias", "beta", "output_bias"):
            values[name] = np.zeros(shape, np.float32)
        elif leaf == "gamma":
            values[name] = np.ones(shape, np.float32)
        else:
            values[name] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
    return values


def _gradients(names_shapes, seed=1):
    """Per-step gradients; steps 0 and 3 have global norm > 1 (clipped), the others < 1."""
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(STEPS):
        g = {n: rng.standard_normal(s).astype(np.float32) for n, s in names_shapes.items()}
        norm = np.sqrt(sum(float(np.sum(x.astype(np.float64) ** 2)) for x in g.values()))
        target = 5.0 if t in (0, 3) else 0.4
        steps.append({n: (x * (target / norm)).astype(np.float32) for n, x in g.items()})
    return steps


def _run_tf(opt, values, grad_steps, use_function):
    variables = {n: tf.Variable(v, name=n) for n, v in values.items()}
    opt.build(variables)

    def step(grads):
        return opt.apply_gradients([(grads[n], n) for n in variables], variables)

    if use_function:
        step = tf.function(step)
    for grads in grad_steps:
        step({n: tf.constant(g) for n, g in grads.items()})
    slots = {n: v.numpy() for n, v in opt.slot_variables().items()}
    return {n: v.numpy() for n, v in variables.items()}, slots


def _schedule():
    return WarmupPolynomialDecay(LR, TOTAL, WARMUP)


def _np_lr(step):
    return np_schedule(step, LR, TOTAL, WARMUP)


LA_EXCLUDED_TFA = google_excluded  # tfa: layer adaptation excludes default to the decay excludes

# 0: ymcui (BERT-wwm) defaults; 1: TF-Addons / tf-models; 2: NVIDIA; 3: Keras 3 with weight decay;
# 4: custom exclusions; 5: no weight decay; 6: Google AdamWeightDecay; 7: AdamWeightDecay + BC
VARIANTS = {
    "ymcui": (lambda s: Lamb(s),
              dict(bias_correction=False, decay=lambda n: not google_excluded(n), adapt=lambda n: True)),
    "tfa": (lambda s: Lamb.from_preset("tfa", s),
            dict(bias_correction=True, decay=lambda n: not google_excluded(n),
                 adapt=lambda n: not LA_EXCLUDED_TFA(n))),
    "nvidia": (lambda s: Lamb.from_preset("nvidia", s),
               dict(bias_correction=True, decay=lambda n: not google_excluded(n), adapt=lambda n: True)),
    "keras_wd": (lambda s: Lamb.from_preset("keras", s, weight_decay_rate=0.01,
                                            exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]),
                 dict(bias_correction=True, eps=1e-7, decoupled=True,
                      decay=lambda n: not google_excluded(n), adapt=lambda n: True)),
    "custom_excludes": (lambda s: Lamb(s, exclude_from_weight_decay=["embeddings"],
                                       exclude_from_layer_adaptation=["pooler", r"/bias$"]),
                        dict(bias_correction=False, decay=lambda n: "embeddings" not in n,
                             adapt=lambda n: "pooler" not in n and not n.endswith("/bias"))),
    "no_decay": (lambda s: Lamb(s, weight_decay_rate=0.0),
                 dict(bias_correction=False, wd=0.0, adapt=lambda n: True)),
    "adamw": (lambda s: AdamWeightDecay(s),
              dict(bias_correction=False, decay=lambda n: not google_excluded(n), adapt=lambda n: False)),
    "adamw_bc": (lambda s: AdamWeightDecay(s, bias_correction=True),
                 dict(bias_correction=True, decay=lambda n: not google_excluded(n), adapt=lambda n: False)),
}


CASES = [(v, False) for v in VARIANTS] + [("ymcui", True), ("adamw_bc", True)]


@pytest.mark.parametrize("variant, use_function", CASES,
                         ids=[f"{v}-{'tf.function' if f else 'eager'}" for v, f in CASES])
def test_update_equals_numpy_oracle(variant, use_function):
    make, oracle_kwargs = VARIANTS[variant]
    values = _variables()
    grads = _gradients({n: v.shape for n, v in values.items()})
    opt = make(_schedule())
    got, slots = _run_tf(opt, values, grads, use_function)
    want, m, v = np_adam_family(values, grads, lr_fn=_np_lr, **oracle_kwargs)
    for name in values:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-5, atol=2e-7, err_msg=name)
    slot = opt._slot_names
    for name in values:
        np.testing.assert_allclose(slots[f"{name}/{slot[0]}"], m[name], rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(slots[f"{name}/{slot[1]}"], v[name], rtol=1e-5, atol=1e-12)
    assert int(slots["global_step"]) == STEPS
    # the update is large enough that a wrong exclusion would show
    moved = max(float(np.max(np.abs(got[n] - values[n]))) for n in values)
    assert moved > 1e-3


def test_variants_differ_where_lamb_md_says():
    """Bias correction and the tfa layer-adaptation default change the result (LAMB.md §Where they
    differ): a test that passed for every variant because they coincide would prove nothing."""
    values = _variables()
    grads = _gradients({n: v.shape for n, v in values.items()})
    res = {k: _run_tf(VARIANTS[k][0](_schedule()), values, grads, False)[0]
           for k in ("ymcui", "tfa", "nvidia", "adamw")}
    beta = "cls/predictions/transform/LayerNorm/beta"
    assert np.max(np.abs(res["ymcui"][beta] - res["nvidia"][beta])) > 1e-4
    assert np.max(np.abs(res["tfa"][beta] - res["nvidia"][beta])) > 1e-4
    kernel = "bert/encoder/layer_0/attention/self/query/kernel"
    assert np.max(np.abs(res["ymcui"][kernel] - res["adamw"][kernel])) > 1e-4


def test_exclusion_sets():
    names = list(google_variable_shapes(BertConfig(**TINY)))
    ymcui = Lamb(1e-3)
    no_decay = {n for n in names if not ymcui.uses_weight_decay(n)}
    assert no_decay == {n for n in names if n.endswith(("/bias", "/beta", "/gamma", "output_bias"))}
    assert "cls/predictions/output_bias" in no_decay and "cls/seq_relationship/output_bias" in no_decay
    assert "bert/embeddings/word_embeddings" not in no_decay
    assert all(ymcui.uses_layer_adaptation(n) for n in names)  # ymcui: trust ratio on all
    tfa = Lamb.from_preset("tfa", 1e-3)
    assert {n for n in names if not tfa.uses_layer_adaptation(n)} == no_decay
    nvidia = Lamb.from_preset("nvidia", 1e-3)
    assert all(nvidia.uses_layer_adaptation(n) for n in names)
    adamw = AdamWeightDecay(1e-3)
    assert not any(adamw.uses_layer_adaptation(n) for n in names)
    assert {n for n in names if not adamw.uses_weight_decay(n)} == no_decay


def test_keras_preset_equals_keras_lamb():
    """Our 'keras' preset against the real keras.optimizers.Lamb (decoupled decay before the step,
    eps 1e-7, global clip 1.0), on variables carrying Google's names."""
    import keras

    values = _variables()
    grads = _gradients({n: v.shape for n, v in values.items()})
    ours, _ = _run_tf(Lamb.from_preset("keras", 1e-2, weight_decay_rate=0.01,
                                       exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]),
                      values, grads, False)
    kvars = [tf.Variable(v, name=n) for n, v in values.items()]
    kopt = keras.optimizers.Lamb(learning_rate=1e-2, weight_decay=0.01, global_clipnorm=1.0)
    kopt.exclude_from_weight_decay(var_names=["LayerNorm", "layer_norm", "bias"])
    for g in grads:
        kopt.apply_gradients(zip([tf.constant(g[n]) for n in values], kvars))
    for name, var in zip(values, kvars):
        np.testing.assert_allclose(ours[name], var.numpy(), rtol=1e-5, atol=2e-7, err_msg=name)


def test_schedule_matches_google_formula():
    sched = WarmupPolynomialDecay(1e-4, 100, 10)
    for step in [0, 1, 5, 9, 10, 11, 50, 99, 100, 150]:
        assert float(sched(step)) == pytest.approx(np_schedule(step, 1e-4, 100, 10), rel=1e-5, abs=1e-12)
    nvidia = WarmupPolynomialDecay(1e-3, 100, 10, power=0.5)
    for step in [0, 9, 10, 60, 100]:
        assert float(nvidia(step)) == pytest.approx(np_schedule(step, 1e-3, 100, 10, 0.5), rel=1e-5, abs=1e-12)
    assert float(WarmupPolynomialDecay(1e-4, 100, 0)(0)) == pytest.approx(1e-4)
    # TF1's tf.train.polynomial_decay, which Google's create_optimizer used after warmup
    tf1 = tf.compat.v1.train.polynomial_decay(1e-4, tf.constant(40), 100, end_learning_rate=0.0, power=1.0)
    assert float(sched(40)) == pytest.approx(float(tf1() if callable(tf1) else tf1), rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(beta_1=1.0), "beta_1"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(weight_decay_rate=-0.1), "weight_decay_rate"),
    (dict(weight_decay_mode="after"), "weight_decay_mode"),
    (dict(exclude_from_weight_decay=["(unclosed"]), "exclude_from_weight_decay"),
    (dict(clip_norm=0.0), "clip_norm"),
])
def test_bad_optimizer_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Lamb(1e-3, **kwargs)


def test_bad_schedule_and_preset():
    with pytest.raises(ValueError, match="num_warmup_steps"):
        WarmupPolynomialDecay(1e-4, 10, 20)
    with pytest.raises(ValueError, match="learning_rate must be > 0, got 0"):
        WarmupPolynomialDecay(0, 10, 0)
    with pytest.raises(ValueError, match=r"lamb preset must be one of .*'tfa'.* got 'lars'"):
        Lamb.from_preset("lars", 1e-3)
