"""LAMB and Google's AdamWeightDecay, written for TF1-layout checkpoints and tf.distribute.

The update rules are those of ../shared/reference/LAMB.md. Notation: w variable, g gradient
(already reduced over replicas and accumulation micro-steps and clipped to global norm 1.0: see
training.py for the two orders, mean-then-clip and Google's TPU clip-then-sum), t = 1-based step,
lr = schedule(t - 1), lambda = weight_decay_rate:

    m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g^2
    m^, v^ = m / (1 - b1^t), v / (1 - b2^t)      if bias_correction else m, v
    u = m^ / (sqrt(v^) + eps)
    u += lambda w                                 (weight_decay_mode "in_update", unless excluded)
      or w <- w - lr lambda w before the step     (weight_decay_mode "decoupled", Keras 3)
    r = |w| / |u| if |w| > 0 and |u| > 0 else 1   (LAMB, unless excluded from layer adaptation)
    w <- w - lr r u

Exclusion patterns are `re.search`ed against the full Google variable name, as Google, ymcui and
TF-Addons do. Slots are variables named `<var>/lamb_m`, `<var>/lamb_v` (`adam_m`, `adam_v` for
AdamWeightDecay), so they land in the checkpoint exactly where TF1 put them. The optimizer owns the
int64 `global_step`; `apply_gradients` reads it for the learning rate and the bias correction, then
increments it.

`DynamicLossScale` is the float16 loss scaling: `apply_gradients(..., loss_scale=...)` skips the
update of a step whose gradients are not finite (variables and slots keep their values, the step
still counts) and halves the scale; after `growth_steps` finite steps in a row it doubles.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence, Union

import tensorflow as tf

DEFAULT_WEIGHT_DECAY_EXCLUDES = ("LayerNorm", "layer_norm", "bias")

# name -> settings. "tfa": TF-Addons / tf-models LAMB as `official.nlp.optimization.create_optimizer`
# builds it (exclude_from_layer_adaptation falls back to the weight-decay excludes). "nvidia":
# NVIDIA DeepLearningExamples TF2 BERT (TFA with a dummy pattern that keeps the trust ratio on all).
# "keras": keras.optimizers.Lamb (eps 1e-7, decay outside the trust ratio, none by default).
LAMB_PRESETS = {
    "ymcui": dict(bias_correction=False, weight_decay_rate=0.01, epsilon=1e-6,
                  exclude_from_weight_decay=DEFAULT_WEIGHT_DECAY_EXCLUDES,
                  exclude_from_layer_adaptation=(), weight_decay_mode="in_update"),
    "tfa": dict(bias_correction=True, weight_decay_rate=0.01, epsilon=1e-6,
                exclude_from_weight_decay=DEFAULT_WEIGHT_DECAY_EXCLUDES,
                exclude_from_layer_adaptation=DEFAULT_WEIGHT_DECAY_EXCLUDES,
                weight_decay_mode="in_update"),
    "nvidia": dict(bias_correction=True, weight_decay_rate=0.01, epsilon=1e-6,
                   exclude_from_weight_decay=DEFAULT_WEIGHT_DECAY_EXCLUDES,
                   exclude_from_layer_adaptation=(), weight_decay_mode="in_update"),
    "keras": dict(bias_correction=True, weight_decay_rate=0.0, epsilon=1e-7,
                  exclude_from_weight_decay=(), exclude_from_layer_adaptation=(),
                  weight_decay_mode="decoupled"),
}

LearningRate = Union[float, Callable[[tf.Tensor], tf.Tensor]]


class WarmupPolynomialDecay:
    """Google's `create_optimizer` schedule: linear warmup, then polynomial decay from step 0.

    lr(step) = init_lr * step / num_warmup_steps                       if step < num_warmup_steps
             = (init_lr - end_lr) * (1 - min(step, T) / T) ** power + end_lr   otherwise,
    with step the number of updates already applied (0 for the first update, so warmup starts at 0)
    and T = num_train_steps. power=1 is Google/ymcui; NVIDIA's LAMB recipe uses power=0.5.
    """

    def __init__(self, init_lr: float, num_train_steps: int, num_warmup_steps: int = 0,
                 power: float = 1.0, end_lr: float = 0.0):
        if not init_lr > 0:
            raise ValueError(f"learning_rate must be > 0, got {init_lr!r}")
        if num_train_steps < 1:
            raise ValueError(f"num_train_steps must be >= 1, got {num_train_steps!r}")
        if not 0 <= num_warmup_steps <= num_train_steps:
            raise ValueError(f"num_warmup_steps must be in [0, num_train_steps={num_train_steps}], "
                             f"got {num_warmup_steps!r}")
        if not power > 0:
            raise ValueError(f"lr decay power must be > 0, got {power!r}")
        self.init_lr, self.num_train_steps = float(init_lr), int(num_train_steps)
        self.num_warmup_steps, self.power, self.end_lr = int(num_warmup_steps), float(power), float(end_lr)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        total = tf.constant(float(self.num_train_steps), tf.float32)
        p = tf.minimum(step, total) / total
        decayed = (self.init_lr - self.end_lr) * tf.pow(1.0 - p, self.power) + self.end_lr
        if not self.num_warmup_steps:
            return decayed
        warmup = self.init_lr * (step / float(self.num_warmup_steps))
        return tf.where(step < float(self.num_warmup_steps), warmup, decayed)


def _as_patterns(value, what):
    if value is None:
        return ()
    if isinstance(value, str):
        value = [p for p in value.split(",") if p]
    patterns = tuple(value)
    for p in patterns:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"{what} pattern {p!r} is not a valid regular expression: {e}") from None
    return patterns


class DynamicLossScale:
    """Dynamic loss scaling for float16 compute (what `keras.mixed_precision.LossScaleOptimizer`
    and PyTorch's GradScaler do), with its state in three checkpoint variables:

    * `fp16_loss_scale/scale` (float32): the loss is multiplied by it before the backward pass and
      the gradients divided by it after, so that small float16 gradients do not flush to zero;
    * `fp16_loss_scale/good_steps` (int64): finite steps since the scale last changed;
    * `fp16_loss_scale/skipped_steps` (int64): steps skipped so far (for the logs).

    A step whose gradients hold an Inf or NaN is skipped (no variable or slot changes) and the
    scale halves; after `growth_steps` finite steps in a row the scale doubles. The update happens
    in `apply_gradients` (cross-replica), so every replica sees the same scale.
    """

    NAMES = ("fp16_loss_scale/scale", "fp16_loss_scale/good_steps", "fp16_loss_scale/skipped_steps")

    def __init__(self, initial_scale: float = 2.0 ** 15, growth_steps: int = 2000,
                 factor: float = 2.0):
        if not (initial_scale > 0 and initial_scale < 3e38):
            raise ValueError(f"initial loss scale must be in (0, 3e38), got {initial_scale!r}")
        if isinstance(growth_steps, bool) or not isinstance(growth_steps, int) or growth_steps < 1:
            raise ValueError(f"loss scale growth_steps must be a positive integer, got {growth_steps!r}")
        if not factor > 1:
            raise ValueError(f"loss scale factor must be > 1, got {factor!r}")
        self.initial_scale, self.growth_steps, self.factor = float(initial_scale), growth_steps, float(factor)
        self.scale = self.good_steps = self.skipped_steps = None

    def build(self) -> None:
        """Creates the state variables (call under strategy.scope())."""
        if self.scale is None:
            self.scale = tf.Variable(tf.constant(self.initial_scale, tf.float32),
                                     name="fp16_loss_scale/scale", trainable=False)
            self.good_steps = tf.Variable(tf.constant(0, tf.int64), name="fp16_loss_scale/good_steps",
                                          trainable=False)
            self.skipped_steps = tf.Variable(tf.constant(0, tf.int64),
                                             name="fp16_loss_scale/skipped_steps", trainable=False)

    def variables(self) -> dict[str, tf.Variable]:
        """Checkpoint name -> variable."""
        return dict(zip(self.NAMES, (self.scale, self.good_steps, self.skipped_steps)))

    @tf.autograph.experimental.do_not_convert
    def _update(self, strategy, finite):
        """New scale and counters after a step whose gradients were `finite` (cross-replica)."""
        growth, factor = self.growth_steps, self.factor

        def update(scale, good, skipped, finite):
            good_next = tf.where(finite, good + 1, tf.zeros_like(good))
            grow = tf.logical_and(finite, good_next >= growth)
            new_scale = tf.where(grow, scale * factor, tf.where(finite, scale, scale / factor))
            # a doubled scale that overflows float32 is not taken
            new_scale = tf.where(tf.math.is_finite(new_scale), new_scale, scale)
            return tf.group(scale.assign(new_scale),
                            good.assign(tf.where(grow, tf.zeros_like(good), good_next)),
                            skipped.assign_add(tf.where(finite, tf.zeros_like(skipped),
                                                        tf.ones_like(skipped))))

        strategy.extended.update(self.scale, update, args=(self.good_steps, self.skipped_steps, finite),
                                 group=True)


class _AdamFamily:
    """Shared machinery: slots, name-based exclusions, distributed apply, global-norm clipping."""

    _slot_names: tuple[str, str]
    _layer_adaptation: bool

    def __init__(self, learning_rate: LearningRate, *, weight_decay_rate, beta_1, beta_2, epsilon,
                 bias_correction, exclude_from_weight_decay, exclude_from_layer_adaptation,
                 weight_decay_mode, clip_norm):
        if not (callable(learning_rate) or float(learning_rate) > 0):
            raise ValueError(f"learning_rate must be > 0 or a schedule, got {learning_rate!r}")
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        if not weight_decay_rate >= 0:
            raise ValueError(f"weight_decay_rate must be >= 0, got {weight_decay_rate!r}")
        if weight_decay_mode not in ("in_update", "decoupled"):
            raise ValueError("weight_decay_mode must be one of ['in_update', 'decoupled'], "
                             f"got {weight_decay_mode!r}")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None, got {clip_norm!r}")
        self.learning_rate = learning_rate
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.bias_correction = bool(bias_correction)
        self.exclude_from_weight_decay = _as_patterns(exclude_from_weight_decay,
                                                      "exclude_from_weight_decay")
        self.exclude_from_layer_adaptation = _as_patterns(exclude_from_layer_adaptation,
                                                          "exclude_from_layer_adaptation")
        self.weight_decay_mode = weight_decay_mode
        self.clip_norm = clip_norm
        self.global_step = None
        self._names: list[str] = []
        self._slots: dict[str, tuple[tf.Variable, tf.Variable]] = {}

    # ------------------------------------------------------------------ configuration
    def uses_weight_decay(self, name: str) -> bool:
        """Whether `name` (a full Google variable name) gets weight decay."""
        if not self.weight_decay_rate:
            return False
        return not any(re.search(p, name) for p in self.exclude_from_weight_decay)

    def uses_layer_adaptation(self, name: str) -> bool:
        """Whether `name` gets the LAMB trust ratio (always False for AdamWeightDecay)."""
        if not self._layer_adaptation:
            return False
        return not any(re.search(p, name) for p in self.exclude_from_layer_adaptation)

    def learning_rate_at(self, step):
        """Learning rate for the update that follows `step` completed updates."""
        if callable(self.learning_rate):
            return tf.cast(self.learning_rate(step), tf.float32)
        return tf.constant(float(self.learning_rate), tf.float32)

    # ------------------------------------------------------------------ state
    def build(self, variables: dict[str, tf.Variable]) -> None:
        """Creates `global_step` and the two slots of each variable (call under strategy.scope())."""
        if self.global_step is None:
            self.global_step = tf.Variable(tf.constant(0, tf.int64), name="global_step",
                                           trainable=False)
        for name, var in variables.items():
            if name in self._slots:
                continue
            m = tf.Variable(tf.zeros(var.shape, tf.float32), name=f"{name}/{self._slot_names[0]}",
                            trainable=False)
            v = tf.Variable(tf.zeros(var.shape, tf.float32), name=f"{name}/{self._slot_names[1]}",
                            trainable=False)
            self._slots[name] = (m, v)
            self._names.append(name)

    def slot_variables(self) -> dict[str, tf.Variable]:
        """Checkpoint name -> slot variable (`<var>/lamb_m`, ...), plus `global_step`."""
        out = {}
        for name in self._names:
            m, v = self._slots[name]
            out[f"{name}/{self._slot_names[0]}"] = m
            out[f"{name}/{self._slot_names[1]}"] = v
        if self.global_step is not None:
            out["global_step"] = self.global_step
        return out

    # ------------------------------------------------------------------ update
    @tf.autograph.experimental.do_not_convert
    def apply_gradients(self, grads_and_names: Sequence[tuple[tf.Tensor, str]],
                        variables: dict[str, tf.Variable], *, clip: bool = True,
                        loss_scale: DynamicLossScale | None = None):
        """Clips the gradients to global norm `clip_norm`, updates variables and slots, increments
        `global_step`. Call in replica context (inside `strategy.run`) with gradients that are
        already all-reduced, or outside any strategy. Returns the global norm before clipping.

        `clip=False`: the gradients were clipped already (per replica, Google's TPU order); they
        are applied as given and None is returned (unless `loss_scale` needs the norm).
        `loss_scale`: float16 training. A step whose gradients (already divided by the scale) are
        not all finite changes no variable and no slot; `global_step` still advances, and the
        scale and its counters are updated (see DynamicLossScale)."""
        grads = [tf.convert_to_tensor(g) for g, _ in grads_and_names]
        names = [n for _, n in grads_and_names]
        missing = [n for n in names if n not in self._slots]
        if missing:
            raise ValueError(f"optimizer was not built for variables {missing[:3]} (call build())")
        if clip and self.clip_norm is not None:
            grads, norm = tf.clip_by_global_norm(grads, self.clip_norm)
        elif clip or loss_scale is not None:
            norm = tf.linalg.global_norm(grads)
        else:
            norm = None
        step = self.global_step.read_value()
        coeffs = self._coefficients(step)
        if loss_scale is not None:
            # one Inf or NaN anywhere makes the global norm non-finite
            coeffs["finite"] = tf.math.is_finite(norm)
        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # cross-replica context: e.g. eager calls under strategy.scope()
            self._distributed_apply(tf.distribute.get_strategy(), grads, names, variables, coeffs,
                                    loss_scale)
        else:
            ctx.merge_call(self._distributed_apply, args=(grads, names, variables, coeffs, loss_scale))
        return norm

    def _coefficients(self, step):
        """The scalar tensors every variable's update uses, built once per step (not per variable:
        that keeps the traced graph small). Float32 throughout, like the reference optimizers;
        `1 - beta` is computed in Python double first, as `tf.multiply(1.0 - beta_1, grad)` does."""
        f = lambda x: tf.constant(x, tf.float32)  # noqa: E731
        t = tf.cast(step + 1, tf.float32)
        b1, b2 = f(self.beta_1), f(self.beta_2)
        c = {"lr": self.learning_rate_at(step), "b1": b1, "one_minus_b1": f(1.0 - self.beta_1),
             "b2": b2, "one_minus_b2": f(1.0 - self.beta_2), "eps": f(self.epsilon),
             "wd": f(self.weight_decay_rate), "zero": f(0.0), "one": f(1.0), "two": f(2.0)}
        if self.bias_correction:
            c["bc1"] = 1.0 - tf.pow(b1, t)
            c["bc2"] = 1.0 - tf.pow(b2, t)
        return c

    @tf.autograph.experimental.do_not_convert
    def _distributed_apply(self, strategy, grads, names, variables, coeffs, loss_scale=None):
        ext = strategy.extended
        for grad, name in zip(grads, names):
            m, v = self._slots[name]
            fn = self._make_update_fn(name)
            ext.update(variables[name], fn, args=(grad, m, v, coeffs), group=True)
        ext.update(self.global_step, lambda s: s.assign_add(1), group=True)
        if loss_scale is not None:
            loss_scale._update(strategy, coeffs["finite"])

    def _make_update_fn(self, name):
        decay = self.uses_weight_decay(name)
        adapt = self.uses_layer_adaptation(name)
        bias_correction, decoupled = self.bias_correction, self.weight_decay_mode == "decoupled"

        @tf.autograph.experimental.do_not_convert
        def update(var, grad, m, v, c):
            grad = tf.cast(grad, tf.float32)
            next_m = c["b1"] * m + c["one_minus_b1"] * grad
            next_v = c["b2"] * v + c["one_minus_b2"] * tf.square(grad)
            if bias_correction:
                m_hat, v_hat = next_m / c["bc1"], next_v / c["bc2"]
            else:
                m_hat, v_hat = next_m, next_v
            u = m_hat / (tf.sqrt(v_hat) + c["eps"])
            w = w0 = var.read_value() if hasattr(var, "read_value") else tf.convert_to_tensor(var)
            lr = c["lr"]
            if decay and decoupled:
                w = w - w * c["wd"] * lr
            elif decay:
                u = u + c["wd"] * w
            if adapt:
                # sqrt(2 * l2_loss) = ||x||: one fused pass instead of square + sum (two)
                w_norm = tf.sqrt(c["two"] * tf.nn.l2_loss(w))
                u_norm = tf.sqrt(c["two"] * tf.nn.l2_loss(u))
                zero, one = c["zero"], c["one"]
                ratio = tf.where(w_norm > zero, tf.where(u_norm > zero, w_norm / u_norm, one), one)
                new_w = w - ratio * lr * u
            else:
                new_w = w - lr * u
            if "finite" in c:  # float16 loss scaling: a step with Inf/NaN gradients changes nothing
                keep = tf.logical_not(c["finite"])
                next_m = tf.where(keep, m, next_m)
                next_v = tf.where(keep, v, next_v)
                new_w = tf.where(keep, w0, new_w)
            return tf.group(m.assign(next_m), v.assign(next_v), var.assign(new_w))

        return update


class Lamb(_AdamFamily):
    """LAMB with the switches that tell the published variants apart (see module docstring).

    Defaults reproduce ymcui/LAMB_Optimizer_TF as BERT-wwm used it: no bias correction, weight
    decay 0.01 skipped for LayerNorm|layer_norm|bias, trust ratio on every variable, eps 1e-6,
    global-norm clipping at 1.0. `Lamb.from_preset("tfa"|"nvidia"|"keras", lr)` gives the others.
    """

    _slot_names = ("lamb_m", "lamb_v")
    _layer_adaptation = True

    def __init__(self, learning_rate: LearningRate, *, weight_decay_rate: float = 0.01,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-6,
                 bias_correction: bool = False,
                 exclude_from_weight_decay: Sequence[str] | None = DEFAULT_WEIGHT_DECAY_EXCLUDES,
                 exclude_from_layer_adaptation: Sequence[str] | None = (),
                 weight_decay_mode: str = "in_update", clip_norm: float | None = 1.0):
        super().__init__(learning_rate, weight_decay_rate=weight_decay_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, bias_correction=bias_correction,
                         exclude_from_weight_decay=exclude_from_weight_decay,
                         exclude_from_layer_adaptation=exclude_from_layer_adaptation,
                         weight_decay_mode=weight_decay_mode, clip_norm=clip_norm)

    @classmethod
    def from_preset(cls, preset: str, learning_rate: LearningRate, **overrides) -> "Lamb":
        """A LAMB configured as one of LAMB_PRESETS ('ymcui', 'tfa', 'nvidia', 'keras')."""
        if preset not in LAMB_PRESETS:
            raise ValueError(f"lamb preset must be one of {sorted(LAMB_PRESETS)}, got {preset!r}")
        return cls(learning_rate, **{**LAMB_PRESETS[preset], **overrides})


class AdamWeightDecay(_AdamFamily):
    """Google's AdamWeightDecayOptimizer (BERT `optimization.py`): Adam without bias correction,
    weight decay 0.01 added to the update (skipped for LayerNorm|layer_norm|bias), eps 1e-6,
    global-norm clipping at 1.0. Slots `<var>/adam_m`, `<var>/adam_v`."""

    _slot_names = ("adam_m", "adam_v")
    _layer_adaptation = False

    def __init__(self, learning_rate: LearningRate, *, weight_decay_rate: float = 0.01,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-6,
                 bias_correction: bool = False,
                 exclude_from_weight_decay: Sequence[str] | None = DEFAULT_WEIGHT_DECAY_EXCLUDES,
                 weight_decay_mode: str = "in_update", clip_norm: float | None = 1.0):
        super().__init__(learning_rate, weight_decay_rate=weight_decay_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, bias_correction=bias_correction,
                         exclude_from_weight_decay=exclude_from_weight_decay,
                         exclude_from_layer_adaptation=(), weight_decay_mode=weight_decay_mode,
                         clip_norm=clip_norm)
