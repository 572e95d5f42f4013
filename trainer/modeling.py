"""BERT for pre-training in TF2, with the variables of Google's TF1 checkpoints.

The model is a `tf.Module` holding plain `tf.Variable`s whose names are exactly the TF1 names
(`bert/encoder/layer_0/attention/self/query/kernel`, `cls/predictions/output_bias`, ...), so the
checkpoint layer (checkpoint.py) can read and write Google's `bert_model.ckpt` without any name map.
The maths follow google-research/bert `modeling.py` and `run_pretraining.py`:

* embeddings = word[input_ids] + token_type[segment_ids] + position[:seq_len], LayerNorm, dropout;
* attention scores / sqrt(size_per_head) + (1 - mask) * -10000, softmax, dropout;
* post-LayerNorm transformer blocks, LayerNorm epsilon 1e-12 (tf.contrib.layers.layer_norm);
* pooler = tanh(dense(first token));
* MLM head: dense + activation + LayerNorm, logits = x . word_embeddings^T + output_bias;
  loss = sum(w * nll) / (sum(w) + 1e-5);
* NSP head: logits = pooled . output_weights^T + output_bias ([2, hidden]); loss = mean nll.

Mixed precision: variables stay float32; with `compute_dtype=tf.bfloat16` (or float16) they are
cast at use for the encoder's matmuls. LayerNorm, the attention softmax and the losses are
computed in float32. The MLM and NSP logits are float32 matmuls: with bfloat16 the MLM output
layer takes the float32 LayerNorm output and the float32 embedding table (no bfloat16 rounding of
its inputs or of the logits; on a TPU XLA runs it with bfloat16 multiplies and float32 sums, which
is what Google's float32 model got there). With float16 (V100/T4, whose float32 matmuls are 8x
slower) the MLM output matmul runs in float16 and its logits are cast to float32: float16 keeps
11 bits, so a logit of 20 is within 0.01.
Dropout is stateless, keyed by a seed tensor, so a resumed run draws the same masks as a straight one.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from .config import BertConfig, google_variable_shapes  # noqa: F401 (re-exported)

# Stateless RNG algorithm of the dropout masks: "auto_select" lets TF pick per device (ThreeFry
# under XLA on TPU, the fastest there). Masks are a pure function of (seed, step, replica,
# micro-batch, site) on a given backend; XLA and non-XLA kernels draw different bits, so a run
# resumed on another backend gets other (equally random) masks.
RNG_ALG = "auto_select"
LAYER_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm's default, which Google's BERT used
_NSP_PREFIXES = ("bert/pooler/", "cls/seq_relationship/")


def gelu(x):
    """GELU, exact erf form: x * Phi(x) (the form Google's released checkpoints were trained with)."""
    return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(math.sqrt(2.0), x.dtype)))


def gelu_tanh(x):
    """GELU, tanh approximation (google-research/bert after Feb 2019, bert-tensorflow 1.0.4)."""
    c = tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
    return x * 0.5 * (1.0 + tf.tanh(c * (x + tf.cast(0.044715, x.dtype) * x * x * x)))


_ACTIVATION_FNS = {"gelu": gelu, "gelu_tanh": gelu_tanh, "relu": tf.nn.relu, "tanh": tf.tanh,
                   "linear": lambda x: x}




def _initial_value(name: str, shape: list[int], stddev: float, seed: int, index: int):
    """Google's initialisers: truncated normal (2 std) for weights and tables, 0 for biases and
    LayerNorm beta, 1 for LayerNorm gamma. Stateless, so a seed gives the same model anywhere."""
    leaf = name.rsplit("/", 1)[1]
    if leaf in ("bias", "beta", "output_bias"):
        return tf.zeros(shape, tf.float32)
    if leaf == "gamma":
        return tf.ones(shape, tf.float32)
    return tf.random.stateless_truncated_normal(shape, seed=[seed, index], stddev=stddev,
                                                dtype=tf.float32)


class PretrainingOutputs(NamedTuple):
    sequence_output: tf.Tensor  # [batch, seq, hidden], compute dtype
    pooled_output: tf.Tensor  # [batch, hidden], compute dtype
    mlm_logits: tf.Tensor  # [batch * max_predictions, vocab], float32
    nsp_logits: tf.Tensor  # [batch, 2], float32


class BertPretrainingModel(tf.Module):
    """BERT encoder + MLM head (tied to the word embeddings) + NSP head, Google variable names.

    Create it under `strategy.scope()` to get distributed variables. `variables_by_name` maps each
    Google name to its `tf.Variable` (float32 always). `seed` makes the initial values reproducible.
    """

    def __init__(self, config: BertConfig, *, compute_dtype=tf.float32, seed: int = 12345):
        super().__init__(name="bert_pretraining")
        compute_dtype = tf.as_dtype(compute_dtype)
        if compute_dtype not in (tf.float32, tf.bfloat16, tf.float16):
            raise ValueError(f"compute_dtype must be float32, bfloat16 or float16, got {compute_dtype.name}")
        self.config = config
        self.compute_dtype = compute_dtype
        self._act = _ACTIVATION_FNS[config.hidden_act]
        self._vars = {}
        for index, (name, shape) in enumerate(google_variable_shapes(config).items()):
            self._vars[name] = tf.Variable(
                _initial_value(name, shape, config.initializer_range, seed, index),
                name=name, trainable=True, dtype=tf.float32)

    @property
    def variables_by_name(self) -> dict[str, tf.Variable]:
        """Google name -> variable, in checkpoint order."""
        return dict(self._vars)

    def trainable_names(self, use_nsp: bool = True) -> list[str]:
        """Names the optimizer updates. Without NSP the pooler and NSP head get no gradient and
        are left untouched (no weight decay either), as in RoBERTa-wwm-ext."""
        if use_nsp:
            return list(self._vars)
        return [n for n in self._vars if not n.startswith(_NSP_PREFIXES)]

    # ---------------------------------------------------------------- building blocks
    def _w(self, name):
        return tf.cast(self._vars[name], self.compute_dtype)

    def _dense(self, x, prefix, activation=None):
        y = tf.matmul(x, self._w(prefix + "/kernel")) + self._w(prefix + "/bias")
        return activation(y) if activation is not None else y

    def _layer_norm(self, x, prefix, out_dtype=None):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        y = tf.nn.batch_normalization(x32, mean, variance, offset=self._vars[prefix + "/beta"],
                                      scale=self._vars[prefix + "/gamma"],
                                      variance_epsilon=LAYER_NORM_EPSILON)
        return tf.cast(y, out_dtype or self.compute_dtype)

    def _dropout(self, x, rate, seeds):
        if seeds is None or rate == 0.0:
            return x
        seed = tf.random.experimental.stateless_fold_in(seeds["base"], seeds["count"], alg=RNG_ALG)
        seeds["count"] += 1
        return tf.nn.experimental.stateless_dropout(x, rate=rate, seed=seed, rng_alg=RNG_ALG)

    # ---------------------------------------------------------------- forward
    @tf.autograph.experimental.do_not_convert
    def encode(self, input_ids, input_mask, segment_ids, *, training=False, dropout_seed=None):
        """Runs embeddings + encoder + pooler; returns (sequence_output, pooled_output).

        input_ids, input_mask, segment_ids: int32 [batch, seq]. With `training=True` and a
        `dropout_seed` (int32/int64 [2]) dropout is applied with stateless, reproducible masks.
        """
        cfg = self.config
        seeds = {"base": dropout_seed, "count": 0} if training and dropout_seed is not None else None
        input_ids = tf.convert_to_tensor(input_ids)
        shape = tf.shape(input_ids)
        batch, seq = shape[0], shape[1]
        static_seq = input_ids.shape[1]
        if static_seq is not None and static_seq > cfg.max_position_embeddings:
            raise ValueError(f"sequence length {static_seq} exceeds max_position_embeddings "
                             f"{cfg.max_position_embeddings} of the bert config")
        h = cfg.hidden_size
        x = tf.gather(self._w("bert/embeddings/word_embeddings"), input_ids)
        x += tf.gather(self._w("bert/embeddings/token_type_embeddings"), segment_ids)
        x += self._w("bert/embeddings/position_embeddings")[tf.newaxis, :seq, :]
        x = self._layer_norm(x, "bert/embeddings/LayerNorm")
        x = self._dropout(x, cfg.hidden_dropout_prob, seeds)

        # [batch, 1, 1, seq]: 0 where attended, -10000 where padded (Google's additive mask)
        mask = tf.cast(input_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
        adder = (1.0 - mask) * -10000.0
        n, d = cfg.num_attention_heads, cfg.size_per_head
        scale = 1.0 / math.sqrt(d)

        def heads(t):  # [batch*seq, hidden] -> [batch, heads, seq, size_per_head]
            return tf.transpose(tf.reshape(t, [batch, seq, n, d]), [0, 2, 1, 3])

        x = tf.reshape(x, [-1, h])
        for layer in range(cfg.num_hidden_layers):
            p = f"bert/encoder/layer_{layer}/"
            q = heads(self._dense(x, p + "attention/self/query"))
            k = heads(self._dense(x, p + "attention/self/key"))
            v = heads(self._dense(x, p + "attention/self/value"))
            scores = tf.matmul(q, k, transpose_b=True)
            scores = tf.cast(scores, tf.float32) * scale + adder
            probs = tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)
            probs = self._dropout(probs, cfg.attention_probs_dropout_prob, seeds)
            context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [-1, h])
            attn = self._dense(context, p + "attention/output/dense")
            attn = self._dropout(attn, cfg.hidden_dropout_prob, seeds)
            attn = self._layer_norm(attn + x, p + "attention/output/LayerNorm")
            inter = self._dense(attn, p + "intermediate/dense", self._act)
            out = self._dense(inter, p + "output/dense")
            out = self._dropout(out, cfg.hidden_dropout_prob, seeds)
            x = self._layer_norm(out + attn, p + "output/LayerNorm")
        sequence_output = tf.reshape(x, [batch, seq, h])
        pooled = self._dense(sequence_output[:, 0, :], "bert/pooler/dense", tf.tanh)
        return sequence_output, pooled

    @tf.autograph.experimental.do_not_convert
    def __call__(self, input_ids, input_mask, segment_ids, masked_lm_positions, *, training=False,
                 dropout_seed=None) -> PretrainingOutputs:
        """Encoder plus both heads. masked_lm_positions: int32 [batch, max_predictions]."""
        sequence_output, pooled = self.encode(input_ids, input_mask, segment_ids,
                                              training=training, dropout_seed=dropout_seed)
        h = self.config.hidden_size
        shape = tf.shape(sequence_output)
        flat_offsets = tf.range(shape[0], dtype=masked_lm_positions.dtype)[:, tf.newaxis] * shape[1]
        flat_positions = tf.reshape(masked_lm_positions + flat_offsets, [-1])
        t = tf.gather(tf.reshape(sequence_output, [-1, h]), flat_positions)
        t = self._dense(t, "cls/predictions/transform/dense", self._act)
        if self.compute_dtype == tf.float16:  # see the module docstring
            t = self._layer_norm(t, "cls/predictions/transform/LayerNorm")
            mlm_logits = tf.matmul(t, self._w("bert/embeddings/word_embeddings"), transpose_b=True)
        else:  # float32 and bfloat16: a float32 matmul of the float32 LayerNorm output
            t = self._layer_norm(t, "cls/predictions/transform/LayerNorm", out_dtype=tf.float32)
            mlm_logits = tf.matmul(t, self._vars["bert/embeddings/word_embeddings"], transpose_b=True)
        mlm_logits = tf.cast(mlm_logits, tf.float32) + self._vars["cls/predictions/output_bias"]
        nsp_logits = tf.matmul(tf.cast(pooled, tf.float32), self._vars["cls/seq_relationship/output_weights"],
                               transpose_b=True)
        nsp_logits = nsp_logits + self._vars["cls/seq_relationship/output_bias"]
        return PretrainingOutputs(sequence_output, pooled, mlm_logits, nsp_logits)


@tf.autograph.experimental.do_not_convert
def pretraining_loss_and_metrics(outputs: PretrainingOutputs, features: dict, *, use_nsp: bool = True):
    """Losses of `run_pretraining.py` and the sums its eval metrics are made of (all float32 scalars).

    Returns a dict with `loss` (masked_lm_loss + next_sentence_loss when use_nsp), `masked_lm_loss`
    (sum(w * nll) / (sum(w) + 1e-5)), `next_sentence_loss` (mean nll, 0 without NSP),
    `masked_lm_accuracy` and `next_sentence_accuracy` for this batch, and the sums
    `mlm_weight_sum`, `mlm_loss_sum` (sum w * nll), `mlm_correct_sum` (sum w * [argmax == id]),
    `nsp_count`, `nsp_loss_sum`, `nsp_correct_sum` that eval accumulates over batches.
    """
    label_ids = tf.reshape(features["masked_lm_ids"], [-1])
    weights = tf.reshape(tf.cast(features["masked_lm_weights"], tf.float32), [-1])
    log_probs = tf.nn.log_softmax(outputs.mlm_logits, axis=-1)
    nll = -tf.gather(log_probs, label_ids, axis=1, batch_dims=1)
    mlm_weight_sum = tf.reduce_sum(weights)
    mlm_loss_sum = tf.reduce_sum(weights * nll)
    masked_lm_loss = mlm_loss_sum / (mlm_weight_sum + 1e-5)
    predictions = tf.argmax(outputs.mlm_logits, axis=-1, output_type=label_ids.dtype)
    mlm_correct_sum = tf.reduce_sum(weights * tf.cast(tf.equal(predictions, label_ids), tf.float32))
    out = {
        "masked_lm_loss": masked_lm_loss,
        "masked_lm_accuracy": tf.math.divide_no_nan(mlm_correct_sum, mlm_weight_sum),
        "mlm_weight_sum": mlm_weight_sum,
        "mlm_loss_sum": mlm_loss_sum,
        "mlm_correct_sum": mlm_correct_sum,
    }
    if use_nsp:
        labels = tf.reshape(features["next_sentence_labels"], [-1])
        nsp_log_probs = tf.nn.log_softmax(outputs.nsp_logits, axis=-1)
        nsp_nll = -tf.gather(nsp_log_probs, labels, axis=1, batch_dims=1)
        nsp_pred = tf.argmax(outputs.nsp_logits, axis=-1, output_type=labels.dtype)
        nsp_correct = tf.reduce_sum(tf.cast(tf.equal(nsp_pred, labels), tf.float32))
        nsp_count = tf.cast(tf.size(labels), tf.float32)
        next_sentence_loss = tf.reduce_mean(nsp_nll)
        out.update(next_sentence_loss=next_sentence_loss,
                   next_sentence_accuracy=nsp_correct / nsp_count, nsp_count=nsp_count,
                   nsp_loss_sum=tf.reduce_sum(nsp_nll), nsp_correct_sum=nsp_correct)
        out["loss"] = masked_lm_loss + next_sentence_loss
    else:
        zero = tf.constant(0.0)
        out.update(next_sentence_loss=zero, next_sentence_accuracy=zero, nsp_count=zero,
                   nsp_loss_sum=zero, nsp_correct_sum=zero)
        out["loss"] = masked_lm_loss
    return out
