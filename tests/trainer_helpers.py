"""Helpers for the trainer tests: tiny configs, synthetic TFRecords, independent NumPy oracles.

The NumPy code here is written from the equations of ../shared/reference/LAMB.md and from
google-research/bert's modeling.py description, not from wwm_trainer, so that the tests compare two
independent implementations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
VOCAB = SHARED_DATA / "bert-base-chinese-vocab.txt"

TINY = dict(vocab_size=97, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=32, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
            initializer_range=0.02)


def write_config(path: Path, **overrides) -> str:
    cfg = {**TINY, **overrides}
    path.write_text(json.dumps(cfg))
    return str(path)


# ----------------------------------------------------------------------------- TFRecords
def tiny_options(**options):
    """TrainOptions for a short one-device run of a tiny model: the caller gives the files and
    lengths, and overrides whatever its test checks."""
    from wwm_trainer import TrainOptions

    base = dict(do_train=True, train_batch_size=8, learning_rate=1e-2, num_train_steps=2,
                num_warmup_steps=0, save_checkpoints_steps=2, iterations_per_loop=2,
                strategy="one_device", log_every_loop=False)
    base.update(options)
    base["output_dir"] = str(base["output_dir"])
    return TrainOptions(**base)


def _int_feature(values):
    import tensorflow as tf
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float_feature(values):
    import tensorflow as tf
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def write_synthetic_records(path: Path, n: int, *, seq_len: int, max_pred: int, vocab_size: int,
                            seed: int = 0, nsp: bool = True, pred_len: int | None = None) -> str:
    """n examples in Google's layout (BERT_DATA_SPEC.md §3) with random but well-formed content.
    `pred_len` writes the masked_lm_* features with another length (for mismatch tests)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    pred_len = max_pred if pred_len is None else pred_len
    with tf.io.TFRecordWriter(str(path)) as w:
        for _ in range(n):
            length = int(rng.integers(seq_len // 2, seq_len + 1))
            ids = np.zeros(seq_len, np.int64)
            ids[:length] = rng.integers(5, vocab_size, length)
            ids[0], ids[length - 1] = 1, 2
            mask = (np.arange(seq_len) < length).astype(np.int64)
            seg = np.zeros(seq_len, np.int64)
            seg[length // 2:length] = 1
            k = int(rng.integers(1, min(pred_len, length - 2) + 1))
            pos = np.zeros(pred_len, np.int64)
            pos[:k] = np.sort(rng.choice(np.arange(1, length - 1), k, replace=False))
            mids = np.zeros(pred_len, np.int64)
            mids[:k] = rng.integers(5, vocab_size, k)
            wts = np.zeros(pred_len, np.float32)
            wts[:k] = 1.0
            feats = {"input_ids": _int_feature(ids), "input_mask": _int_feature(mask),
                     "segment_ids": _int_feature(seg), "masked_lm_positions": _int_feature(pos),
                     "masked_lm_ids": _int_feature(mids), "masked_lm_weights": _float_feature(wts)}
            if nsp:
                feats["next_sentence_labels"] = _int_feature([rng.integers(0, 2)])
            ex = tf.train.Example(features=tf.train.Features(feature=feats))
            w.write(ex.SerializeToString())
    return str(path)


def write_real_records(folder: Path, *, n_lines: int, seq_len: int, max_pred: int,
                       seed: int = 12345) -> str:
    """TFRecords made by `wwm_fast.create_instances` (whole word masking from WordPiece groups,
    both segments, padding) from the first `n_lines` lines of People's Daily with the real Chinese
    vocab. The caller skips when ../shared/data is absent."""
    import gzip

    import pytest

    import wwm_fast

    with gzip.open(SHARED_DATA / "people_daily_199801.txt.gz", "rb") as f:
        lines = f.read().split(b"\n")[:n_lines]
    text = folder / "pd.txt"
    text.write_bytes(b"\n".join(lines) + b"\n")
    out = folder / "pd.tfrecord"
    # no segmenter on purpose: whole word masking groups ## pieces only, and says so
    with pytest.warns(wwm_fast.OutputWarning, match="## pieces only"):
        wwm_fast.create_instances([str(text)], str(VOCAB), [str(out)], max_seq_length=seq_len,
                                  max_predictions_per_seq=max_pred, dupe_factor=1, random_seed=seed,
                                  do_whole_word_mask=True, progress=False)
    return str(out)


# ----------------------------------------------------------------------------- optimizer oracle
def np_schedule(step, init_lr, total, warmup, power=1.0):
    """Google create_optimizer: linear warmup from 0, polynomial decay counted from step 0."""
    if warmup and step < warmup:
        return init_lr * step / warmup
    p = min(step, total) / total
    return init_lr * (1.0 - p) ** power


class NpAdamFamily:
    """LAMB.md's update in float64, one step at a time: `step(grads)` clips (unless clip is None)
    and applies one update. w/m/v: name -> array. decay(name) / adapt(name): whether the variable
    gets weight decay / the trust ratio.

    The hyperparameters are rounded to float32 first, as every reference implementation holds
    them in float32 tensors: 1 - 0.999**1 is 1.3e-5 off in float32, which shows in Adam with
    bias correction (no trust ratio to normalise it away)."""

    def __init__(self, params, *, lr_fn, beta_1=0.9, beta_2=0.999, eps=1e-6, wd=0.01,
                 bias_correction=False, decay=lambda name: True, adapt=lambda name: True,
                 decoupled=False, clip=1.0):
        f32 = lambda x: float(np.float32(x))  # noqa: E731
        self.one_minus_b1, self.one_minus_b2 = f32(1.0 - beta_1), f32(1.0 - beta_2)  # Python computes 1 - b
        self.beta_1, self.beta_2, self.eps, self.wd = f32(beta_1), f32(beta_2), f32(eps), f32(wd)
        self.lr_fn, self.bias_correction, self.decay, self.adapt = lr_fn, bias_correction, decay, adapt
        self.decoupled, self.clip = decoupled, clip
        self.w = {n: np.asarray(p, np.float64).copy() for n, p in params.items()}
        self.m = {n: np.zeros_like(p) for n, p in self.w.items()}
        self.v = {n: np.zeros_like(p) for n, p in self.w.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        t, w, m, v = self.t, self.w, self.m, self.v
        beta_1, beta_2, eps, wd = self.beta_1, self.beta_2, self.eps, self.wd
        g = {n: np.asarray(grads[n], np.float64) for n in w}
        if self.clip is not None:
            g = np_clip_by_global_norm(g, self.clip)[0]
        lr = self.lr_fn(t - 1)
        for n in w:
            m[n] = beta_1 * m[n] + self.one_minus_b1 * g[n]
            v[n] = beta_2 * v[n] + self.one_minus_b2 * g[n] ** 2
            if self.bias_correction:
                mh, vh = m[n] / (1 - beta_1 ** t), v[n] / (1 - beta_2 ** t)
            else:
                mh, vh = m[n], v[n]
            u = mh / (np.sqrt(vh) + eps)
            x = w[n]
            if wd and self.decay(n):
                if self.decoupled:
                    x = x - lr * wd * x
                else:
                    u = u + wd * x
            r = 1.0
            if self.adapt(n):
                wn, un = np.linalg.norm(x), np.linalg.norm(u)
                r = wn / un if wn > 0 and un > 0 else 1.0
            w[n] = x - lr * r * u


def np_clip_by_global_norm(grads: dict, clip: float):
    """tf.clip_by_global_norm in float64: every gradient times clip / max(norm, clip)."""
    norm = math.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2)) for x in grads.values()))
    if norm > clip:
        grads = {n: np.asarray(x, np.float64) * (clip / norm) for n, x in grads.items()}
    return grads, norm


def np_adam_family(params, grad_steps, **kwargs):
    """LAMB.md's update over `grad_steps` (see NpAdamFamily); returns (w, m, v)."""
    opt = NpAdamFamily(params, **kwargs)
    for grads in grad_steps:
        opt.step(grads)
    return opt.w, opt.m, opt.v


def google_excluded(name: str) -> bool:
    """Google's default weight-decay excludes, as substrings (the regexes are plain words)."""
    return any(s in name for s in ("LayerNorm", "layer_norm", "bias"))


# ----------------------------------------------------------------------------- model oracle
def np_gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_bert_pretraining(w, cfg, input_ids, input_mask, segment_ids, positions):
    """Google BERT forward (no dropout) from a name->array dict: sequence, pooled, MLM/NSP logits."""
    b, s = input_ids.shape
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = h // nh
    x = (w["bert/embeddings/word_embeddings"][input_ids]
         + w["bert/embeddings/token_type_embeddings"][segment_ids]
         + w["bert/embeddings/position_embeddings"][:s][None])
    x = np_layer_norm(x, w["bert/embeddings/LayerNorm/gamma"], w["bert/embeddings/LayerNorm/beta"])
    adder = (1.0 - input_mask[:, None, None, :].astype(np.float64)) * -10000.0
    for layer in range(cfg["num_hidden_layers"]):
        p = f"bert/encoder/layer_{layer}/"

        def dense(t, name):
            return t @ w[p + name + "/kernel"] + w[p + name + "/bias"]

        def split(t):
            return t.reshape(b, s, nh, d).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(x, f"attention/self/{n}")) for n in ("query", "key", "value"))
        probs = np_softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + adder)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        a = np_layer_norm(dense(ctx, "attention/output/dense") + x,
                          w[p + "attention/output/LayerNorm/gamma"], w[p + "attention/output/LayerNorm/beta"])
        inter = np_gelu(dense(a, "intermediate/dense"))
        x = np_layer_norm(dense(inter, "output/dense") + a,
                          w[p + "output/LayerNorm/gamma"], w[p + "output/LayerNorm/beta"])
    pooled = np.tanh(x[:, 0] @ w["bert/pooler/dense/kernel"] + w["bert/pooler/dense/bias"])
    gathered = x[np.arange(b)[:, None], positions].reshape(-1, h)
    t = np_gelu(gathered @ w["cls/predictions/transform/dense/kernel"]
                + w["cls/predictions/transform/dense/bias"])
    t = np_layer_norm(t, w["cls/predictions/transform/LayerNorm/gamma"],
                      w["cls/predictions/transform/LayerNorm/beta"])
    mlm_logits = t @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
    nsp_logits = pooled @ w["cls/seq_relationship/output_weights"].T + w["cls/seq_relationship/output_bias"]
    return x, pooled, mlm_logits, nsp_logits


def np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


_PER_LAYER = """attention/output/LayerNorm/beta H
attention/output/LayerNorm/gamma H
attention/output/dense/bias H
attention/output/dense/kernel H,H
attention/self/key/bias H
attention/self/key/kernel H,H
attention/self/query/bias H
attention/self/query/kernel H,H
attention/self/value/bias H
attention/self/value/kernel H,H
intermediate/dense/bias I
intermediate/dense/kernel H,I
output/LayerNorm/beta H
output/LayerNorm/gamma H
output/dense/bias H
output/dense/kernel I,H"""

_TOP = """bert/embeddings/LayerNorm/beta H
bert/embeddings/LayerNorm/gamma H
bert/embeddings/position_embeddings P,H
bert/embeddings/token_type_embeddings T,H
bert/embeddings/word_embeddings V,H
bert/pooler/dense/bias H
bert/pooler/dense/kernel H,H
cls/predictions/output_bias V
cls/predictions/transform/LayerNorm/beta H
cls/predictions/transform/LayerNorm/gamma H
cls/predictions/transform/dense/bias H
cls/predictions/transform/dense/kernel H,H
cls/seq_relationship/output_bias 2
cls/seq_relationship/output_weights 2,H"""


def google_names(cfg: dict) -> dict[str, list[int]]:
    """name -> shape of a Google BERT pre-training checkpoint, written out from the layout
    `tf.train.list_variables` shows for the release chinese_L-12_H-768_A-12/bert_model.ckpt
    (independent of wwm_trainer)."""
    dims = {"H": cfg["hidden_size"], "I": cfg["intermediate_size"], "V": cfg["vocab_size"],
            "P": cfg["max_position_embeddings"], "T": cfg["type_vocab_size"]}

    def shape(text):
        return [dims[d] if d in dims else int(d) for d in text.split(",")]

    out = {}
    for line in _TOP.splitlines():
        name, s = line.split()
        out[name] = shape(s)
    for layer in range(cfg["num_hidden_layers"]):
        for line in _PER_LAYER.splitlines():
            name, s = line.split()
            out[f"bert/encoder/layer_{layer}/{name}"] = shape(s)
    return out


def google_base_names() -> dict[str, list[int]]:
    """The 206 variables of Google's chinese_L-12_H-768_A-12/bert_model.ckpt."""
    return google_names(BASE_CONFIG)


BASE_CONFIG = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                   intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                   initializer_range=0.02, directionality="bidi", pooler_fc_size=768,
                   pooler_num_attention_heads=12, pooler_num_fc_layers=3, pooler_size_per_head=128,
                   pooler_type="first_token_transform")


def checkpoint_digest(path) -> str:
    """sha256 over every tensor of the latest checkpoint in `path` (names, dtypes, shapes, bytes):
    equal digests mean bit-identical checkpoints."""
    import hashlib

    from wwm_trainer.checkpoint import numpy_values

    h = hashlib.sha256()
    for name, value in numpy_values(str(path)).items():
        value = np.ascontiguousarray(value)
        h.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def losses_digest(losses) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(losses, np.float32).tobytes()).hexdigest()


# ----------------------------------------------------------------------------- subprocess runs
def run_spec(spec: dict) -> None:
    """Runs the training jobs of `spec` in this process (used through `python trainer_helpers.py`).

    spec = {"logical_cpus": n or None, "runs": [{"opts": TrainOptions kwargs, "strategy":
    "mirrored" | "one_device" | null, "kill_at_step": k or null, "result_file": path}]}.
    With kill_at_step the process SIGKILLs itself right after the checkpoint of that step is
    written (a real crash: no cleanup, no flush).
    """
    import os
    import signal

    import tensorflow as tf

    if spec.get("logical_cpus"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["logical_cpus"])
    from wwm_trainer import TrainOptions, Trainer

    mirrored = None
    for job in spec["runs"]:
        strategy = None
        if job.get("strategy") == "mirrored":
            # one MirroredStrategy per process: a second one reuses the first one's collective
            # instance keys, and its all-reduces fail with "Shape mismatch in the collective"
            if mirrored is None:
                n = spec["logical_cpus"]
                mirrored = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n)])
            strategy = mirrored
        elif job.get("strategy") == "one_device":
            strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        trainer = Trainer(TrainOptions(**job["opts"]), strategy=strategy)
        kill_at = job.get("kill_at_step")

        def on_checkpoint(step, prefix):
            if kill_at is not None and step >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        result = trainer.train(on_checkpoint=on_checkpoint)
        with open(job["result_file"], "w") as f:
            json.dump({"losses": result.losses, "global_step": result.global_step,
                       "replicas": trainer.strategy.num_replicas_in_sync,
                       "digest": checkpoint_digest(job["opts"]["output_dir"]),
                       "losses_digest": losses_digest(result.losses)}, f)


if __name__ == "__main__":
    import sys

    with open(sys.argv[1]) as f:
        run_spec(json.load(f))
