"""Device benchmark: wwm-train (TF2) against HuggingFace `BertForPreTraining` (PyTorch), one GPU.

    python benchmarks/bench_device.py --out bench_device_out            # a GPU, <= 8 minutes
    python benchmarks/bench_device.py --dry_run --out /tmp/bench_dry    # CPU, tiny model, minutes

Writes `<out>/bench_device.json` (every row, the device, versions, peaks, the FLOP formula) and
`<out>/bench_device.md` (tables to paste into benchmarks/RESULTS.md).

What runs, for BERT-base (Chinese: vocab 21128) at seq 128 (batch 256, 20 predictions) and seq
512 (batch 64, 80 predictions):

* wwm-train: the trainer's own host loop (`Trainer`'s tf.function of --iterations_per_loop steps,
  LAMB with the BERT-wwm settings, clipping, dropout) fed by its tf.data pipeline from TFRecords
  written here; precision float32 / bfloat16 / float16 (dynamic loss scaling), XLA on and off.
* HuggingFace transformers `BertForPreTraining` in PyTorch, what a user would pick instead: bf16
  autocast (float16 autocast + GradScaler on GPUs without bfloat16), torch.optim.AdamW (fused on
  GPU), clip_grad_norm_ 1.0, eager and `torch.compile`; the same batch shapes, the batch already
  on the device (the best case for it: no input pipeline).

Each framework runs in its own process (TensorFlow takes all GPU memory), PyTorch first. Rows are
run in order of importance within a time budget (`--budget_s`, 450 s); a row that would not fit
is recorded as skipped, and `--variants` / `--shapes` rerun any subset. Every row times
`--steps` steps after a warm-up call that compiles (its time is recorded as compile_s).

Model FLOPs per example (training = 3 x forward: the backward pass is twice the forward; no
recomputation is counted, and the same task FLOPs are used for both frameworks, although
HuggingFace's MLM head computes logits at every position, not only the masked ones):

    3 * [ L * (8 S H^2 + 4 S H I + 4 S^2 H) + 2 P (H^2 + H V) + 2 H^2 + 4 H ]

L layers, S sequence length, H hidden, I intermediate, V vocabulary, P masked positions per
sequence. MFU = FLOPs per example x examples/s / the device's dense peak for the compute dtype
(PEAK_TFLOPS below: float32 rows use the TF32 peak when TF32 matmuls are enabled, as TensorFlow
does by default on Ampere and newer). Tokens/s counts the padded sequence length.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

BASE = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
            initializer_range=0.02)
TINY = dict(BASE, vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, max_position_embeddings=128)


@dataclasses.dataclass(frozen=True)
class Shape:
    name: str
    seq: int
    preds: int
    batch: int


GPU_SHAPES = (Shape("seq512", 512, 80, 64), Shape("seq128", 128, 20, 256))
DRY_SHAPES = (Shape("seq64", 64, 10, 4), Shape("seq32", 32, 5, 8))

# name -> (framework, precision, compiled); listed in the order they run (most important first)
TF_VARIANTS = {
    "tf-bf16-xla": ("tf", "bfloat16", True),
    "tf-fp16-xla": ("tf", "float16", True),
    "tf-fp32-xla": ("tf", "float32", True),
    "tf-bf16": ("tf", "bfloat16", False),
    "tf-fp16": ("tf", "float16", False),
    "tf-fp32": ("tf", "float32", False),
}
HF_VARIANTS = {
    "hf-bf16-compile": ("hf", "bfloat16", True),
    "hf-bf16": ("hf", "bfloat16", False),
    "hf-fp16-compile": ("hf", "float16", True),
    "hf-fp16": ("hf", "float16", False),
}
VARIANTS = {**TF_VARIANTS, **HF_VARIANTS}
DEFAULT_VARIANTS = ("hf-bf16-compile", "hf-bf16", *TF_VARIANTS)

# Dense peak TFLOP/s (no structured sparsity) from NVIDIA's datasheets, by regex on the device
# name; the first match wins, so the specific names come first. None: no such tensor-core path.
PEAK_TFLOPS = [
    (r"H200.*NVL", {"float32": 60.0, "tf32": 417.5, "bfloat16": 835.5, "float16": 835.5}),
    (r"H200", {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4, "float16": 989.4}),
    (r"H100.*NVL", {"float32": 60.0, "tf32": 417.5, "bfloat16": 835.5, "float16": 835.5}),
    (r"H100.*PCIe", {"float32": 51.2, "tf32": 378.0, "bfloat16": 756.0, "float16": 756.0}),
    (r"H100|GH200", {"float32": 66.9, "tf32": 494.7, "bfloat16": 989.4, "float16": 989.4}),
    (r"A100", {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "float16": 312.0}),
    (r"L40S", {"float32": 91.6, "tf32": 183.0, "bfloat16": 362.0, "float16": 362.0}),
    (r"\bL4\b", {"float32": 30.3, "tf32": 60.0, "bfloat16": 121.0, "float16": 121.0}),
    (r"\bA10\b", {"float32": 31.2, "tf32": 62.5, "bfloat16": 125.0, "float16": 125.0}),
    (r"RTX 4090", {"float32": 82.6, "tf32": 82.6, "bfloat16": 165.2, "float16": 165.2}),
    (r"RTX 3090", {"float32": 35.6, "tf32": 35.6, "bfloat16": 71.0, "float16": 71.0}),
    (r"V100.*PCIE", {"float32": 14.0, "tf32": None, "bfloat16": None, "float16": 112.0}),
    (r"V100", {"float32": 15.7, "tf32": None, "bfloat16": None, "float16": 125.0}),
    (r"\bT4\b", {"float32": 8.1, "tf32": None, "bfloat16": None, "float16": 65.0}),
]

FLOP_FORMULA = ("3 * [L*(8*S*H^2 + 4*S*H*I + 4*S^2*H) + 2*P*(H^2 + H*V) + 2*H^2 + 4*H] per example "
                "(training = 3 x forward; L layers, S seq length, H hidden, I intermediate, "
                "V vocab, P masked positions)")


def train_flops_per_example(cfg: dict, seq: int, preds: int) -> float:
    """FLOP_FORMULA: model FLOPs of one training example (forward + backward)."""
    h, i, n, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    encoder = n * (8 * seq * h * h + 4 * seq * h * i + 4 * seq * seq * h)
    heads = 2 * preds * (h * h + h * v) + 2 * h * h + 4 * h
    return 3.0 * (encoder + heads)


def peak_for(device_name: str) -> tuple[str | None, dict | None]:
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name or "", re.IGNORECASE):
            return pattern, peaks
    return None, None


def peak_tflops(peaks: dict | None, precision: str, tf32: bool) -> float | None:
    if not peaks:
        return None
    if precision == "float32":
        return (peaks.get("tf32") if tf32 else None) or peaks.get("float32")
    return peaks.get(precision)


# ----------------------------------------------------------------------------- data
def make_batch(cfg: dict, shape: Shape, seed: int = 0) -> dict:
    """A batch in run_pretraining's layout: real lengths from S/2 to S, P distinct masked
    positions inside each, random ids and labels, NSP labels."""
    rng = np.random.default_rng(seed)
    b, s, p = shape.batch, shape.seq, shape.preds
    lengths = rng.integers(max(s // 2, p + 2), s + 1, b)
    mask = (np.arange(s)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(106 % cfg["vocab_size"], cfg["vocab_size"], (b, s)).astype(np.int32) * mask
    seg = ((np.arange(s)[None] >= lengths[:, None] // 2) & (mask == 1)).astype(np.int32)
    pos = np.stack([np.sort(rng.choice(np.arange(1, n - 1), p, replace=False)) for n in lengths])
    return {"input_ids": ids, "input_mask": mask, "segment_ids": seg,
            "masked_lm_positions": pos.astype(np.int32),
            "masked_lm_ids": rng.integers(0, cfg["vocab_size"], (b, p)).astype(np.int32),
            "masked_lm_weights": np.ones((b, p), np.float32),
            "next_sentence_labels": rng.integers(0, 2, (b, 1)).astype(np.int32)}


def write_records(path: Path, cfg: dict, shape: Shape, n_batches: int) -> str:
    import tensorflow as tf

    def feature(values, kind):
        if kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    with tf.io.TFRecordWriter(str(path)) as w:
        for k in range(n_batches):
            batch = make_batch(cfg, shape, seed=k)
            for r in range(shape.batch):
                feats = {name: feature(batch[name][r].tolist(), "f" if name == "masked_lm_weights" else "i")
                         for name in batch}
                w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return str(path)


# ----------------------------------------------------------------------------- rows
def _row(variant: str, shape: Shape, **fields) -> dict:
    framework, precision, compiled = VARIANTS[variant]
    return {"variant": variant,
            "framework": "wwm-train (TF)" if framework == "tf" else "HF BertForPreTraining (PyTorch)",
            "precision": precision, "compiled": compiled,
            "compiler": ("XLA" if framework == "tf" else "torch.compile") if compiled else "none",
            "shape": shape.name, "seq": shape.seq, "preds": shape.preds, "batch": shape.batch,
            **fields}


def _timed(variant, shape, cfg, steps, compile_s, elapsed, losses, **extra) -> dict:
    ex_per_s = steps * shape.batch / elapsed
    flops = train_flops_per_example(cfg, shape.seq, shape.preds)
    return _row(variant, shape, status="ok", steps=steps, compile_s=round(compile_s, 2),
                step_ms=round(elapsed / steps * 1e3, 3), examples_per_s=round(ex_per_s, 2),
                tokens_per_s=round(ex_per_s * shape.seq, 1),
                model_tflops=round(ex_per_s * flops / 1e12, 3),
                loss_first=float(losses[0]), loss_last=float(losses[-1]), **extra)


class Budget:
    """Wall-clock budget of one worker; `fits(variant)` guesses a row's time from the rows so far."""

    def __init__(self, deadline: float, default_s: dict):
        self.deadline, self.default_s, self.seen = deadline, dict(default_s), {}

    def left(self) -> float:
        return self.deadline - time.time()

    def need(self, compiled: bool) -> float:
        return max(self.seen.get(compiled, [self.default_s[compiled]]))

    def record(self, compiled: bool, seconds: float):
        self.seen.setdefault(compiled, []).append(seconds)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def _save(path: Path, rows: list, extra: dict):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows, **extra}, indent=1) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- TF worker
def _import_wwm_trainer():
    """wwm_trainer as installed, or else straight from this checkout's trainer/ folder (it needs
    TensorFlow only, not the compiled wwm_fast), so a GPU machine needs no build."""
    try:
        import wwm_trainer  # noqa: F401
    except ImportError:
        import importlib.util

        folder = HERE.parent / "trainer"
        spec = importlib.util.spec_from_file_location("wwm_trainer", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["wwm_trainer"] = module
        spec.loader.exec_module(module)


def tf_worker(spec: dict, result: Path) -> None:
    import tensorflow as tf

    _import_wwm_trainer()
    from wwm_trainer import TrainOptions, Trainer
    from wwm_trainer.input_pipeline import make_dataset

    cfg, shapes = spec["config"], [Shape(**s) for s in spec["shapes"]]
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    info = {"tf_device": details.get("device_name") or platform.processor() or "CPU",
            "tf_compute_capability": details.get("compute_capability"),
            "tf_tf32_enabled": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "tensorflow": tf.__version__}
    rows, pipeline = [], []
    budget = Budget(spec["deadline"], {True: 90.0, False: 60.0} if gpus else {True: 30.0, False: 20.0})
    work = Path(tempfile.mkdtemp(prefix="bench_device_tf_"))
    cfg_file = work / "bert_config.json"
    cfg_file.write_text(json.dumps(cfg))
    records = {s.name: write_records(work / f"{s.name}.tfrecord", cfg, s, spec["record_batches"])
               for s in shapes}
    for shape in shapes:  # the input pipeline alone, on the host
        ds = make_dataset([records[shape.name]], batch_size=shape.batch, max_seq_length=shape.seq,
                          max_predictions_per_seq=shape.preds, is_training=True)
        it = iter(ds)
        next(it)
        n = spec["pipeline_batches"]
        t0 = time.perf_counter()
        for _ in range(n):
            next(it)
        elapsed = time.perf_counter() - t0
        pipeline.append({"shape": shape.name, "batches": n,
                         "examples_per_s": round(n * shape.batch / elapsed, 1)})
        _save(result, rows, {"info": info, "input_pipeline": pipeline})
    cc = info["tf_compute_capability"]
    for variant in spec["variants"]:  # variant-major: the first variants get every shape first
        if variant not in TF_VARIANTS:
            continue
        for shape in shapes:
            _, precision, xla = TF_VARIANTS[variant]
            if gpus and precision == "bfloat16" and cc and tuple(cc) < (8, 0):
                rows.append(_row(variant, shape, status="skipped",
                                 reason=f"no bfloat16 on compute capability {cc}"))
                continue
            if budget.left() < budget.need(xla):
                rows.append(_row(variant, shape, status="skipped",
                                 reason=f"time budget: ~{budget.need(xla):.0f} s needed, "
                                        f"{max(budget.left(), 0):.0f} s left"))
                _save(result, rows, {"info": info, "input_pipeline": pipeline})
                continue
            t_row = time.time()
            trainer = loop = iterator = None
            try:
                opts = TrainOptions(
                    bert_config_file=str(cfg_file), input_file=records[shape.name],
                    output_dir=str(work / f"out-{variant}-{shape.name}"), do_train=True,
                    max_seq_length=shape.seq, max_predictions_per_seq=shape.preds,
                    train_batch_size=shape.batch, learning_rate=1e-4, num_train_steps=10 ** 6,
                    num_warmup_steps=10 ** 4, iterations_per_loop=spec["steps"],
                    precision=precision, jit_compile=xla, strategy="one_device",
                    log_every_loop=False)
                trainer = Trainer(opts)
                trainer.restore_or_initialize()
                iterator = iter(trainer._distributed_dataset(is_training=True))
                loop = trainer._build_train_loop()
                t0 = time.perf_counter()
                loop(iterator, tf.constant(spec["warmup"], tf.int32))[1].numpy()
                compile_s = time.perf_counter() - t0
                skipped0 = trainer._skipped_steps()
                t0 = time.perf_counter()
                losses = loop(iterator, tf.constant(spec["steps"], tf.int32))[1].numpy()
                elapsed = time.perf_counter() - t0
                extra = {}
                if trainer.loss_scale is not None:
                    extra = {"skipped_steps": trainer._skipped_steps() - skipped0,
                             "loss_scale": float(trainer.loss_scale.scale.numpy())}
                row = _timed(variant, shape, cfg, spec["steps"], compile_s, elapsed, losses, **extra)
                if spec.get("profile_dir") and not any(r.get("profile") for r in rows):
                    logdir = str(Path(spec["profile_dir"]) / f"{variant}-{shape.name}")
                    tf.profiler.experimental.start(logdir)
                    loop(iterator, tf.constant(3, tf.int32))[1].numpy()
                    tf.profiler.experimental.stop()
                    row["profile"] = logdir
                rows.append(row)
            except Exception as e:  # OOM, a kernel missing on this device, ...
                rows.append(_row(variant, shape, status="error", error=_first_line(e),
                                 traceback=traceback.format_exc()[-2000:]))
            finally:
                del trainer, loop, iterator
                gc.collect()
            budget.record(xla, time.time() - t_row)
            _save(result, rows, {"info": info, "input_pipeline": pipeline})
    _save(result, rows, {"info": info, "input_pipeline": pipeline})


# ----------------------------------------------------------------------------- PyTorch worker
def hf_worker(spec: dict, result: Path) -> None:
    import torch
    import transformers
    from transformers import BertConfig as HFBertConfig
    from transformers import BertForPreTraining

    cfg, shapes = spec["config"], [Shape(**s) for s in spec["shapes"]]
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    info = {"torch_device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "CPU",
            "torch_compute_capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "torch_bf16_supported": bool(torch.cuda.is_bf16_supported()) if cuda else True}
    rows = []
    budget = Budget(spec["deadline"], {True: 120.0, False: 30.0} if cuda else {True: 90.0, False: 20.0})
    torch.manual_seed(0)
    hf_cfg = HFBertConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                          num_hidden_layers=cfg["num_hidden_layers"],
                          num_attention_heads=cfg["num_attention_heads"],
                          intermediate_size=cfg["intermediate_size"], hidden_act=cfg["hidden_act"],
                          hidden_dropout_prob=cfg["hidden_dropout_prob"],
                          attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"],
                          max_position_embeddings=cfg["max_position_embeddings"],
                          type_vocab_size=cfg["type_vocab_size"],
                          initializer_range=cfg["initializer_range"])
    wanted = [v for v in spec["variants"] if v in HF_VARIANTS]
    if not info["torch_bf16_supported"]:  # V100, T4: what a user would run there
        wanted = [v.replace("bf16", "fp16") for v in wanted]
    def device_batch(shape):
        np_batch = make_batch(cfg, shape)
        labels = np.full((shape.batch, shape.seq), -100, np.int64)
        np.put_along_axis(labels, np_batch["masked_lm_positions"].astype(np.int64),
                          np_batch["masked_lm_ids"].astype(np.int64), axis=1)
        return {"input_ids": torch.tensor(np_batch["input_ids"], dtype=torch.long, device=device),
                "token_type_ids": torch.tensor(np_batch["segment_ids"], dtype=torch.long, device=device),
                "attention_mask": torch.tensor(np_batch["input_mask"], dtype=torch.long, device=device),
                "labels": torch.tensor(labels, device=device),
                "next_sentence_label": torch.tensor(np_batch["next_sentence_labels"][:, 0],
                                                    dtype=torch.long, device=device)}

    for variant in wanted:  # variant-major, as the TF worker
        for shape in shapes:
            _, precision, compiled = HF_VARIANTS[variant]
            batch = device_batch(shape)
            if budget.left() < budget.need(compiled):
                rows.append(_row(variant, shape, status="skipped",
                                 reason=f"time budget: ~{budget.need(compiled):.0f} s needed, "
                                        f"{max(budget.left(), 0):.0f} s left"))
                _save(result, rows, {"info": info})
                continue
            t_row = time.time()
            model = opt = None
            try:
                model = BertForPreTraining(hf_cfg).to(device)
                model.train()
                opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=cuda)
                dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
                scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")
                forward = torch.compile(model) if compiled else model

                def step():
                    with torch.autocast(device_type=device.type, dtype=dtype):
                        loss = forward(**batch).loss
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    return loss.detach()

                def sync():
                    if cuda:
                        torch.cuda.synchronize()

                t0 = time.perf_counter()
                for _ in range(spec["warmup"]):
                    step()
                sync()
                compile_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                losses = [step() for _ in range(spec["steps"])]
                sync()
                elapsed = time.perf_counter() - t0
                losses = [float(x) for x in losses]
                rows.append(_timed(variant, shape, cfg, spec["steps"], compile_s, elapsed, losses,
                                   attn_implementation=getattr(model.config, "_attn_implementation", None)))
            except Exception as e:
                rows.append(_row(variant, shape, status="error", error=_first_line(e),
                                 traceback=traceback.format_exc()[-2000:]))
            finally:
                del model, opt
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
            budget.record(compiled, time.time() - t_row)
            _save(result, rows, {"info": info})
    _save(result, rows, {"info": info})


# ----------------------------------------------------------------------------- driver
def _run_worker(kind: str, spec: dict, out: Path, timeout: float) -> dict:
    spec_file, result = out / f"spec_{kind}.json", out / f"rows_{kind}.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    if result.exists():
        result.unlink()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--spec", str(spec_file),
           "--result", str(result)]
    log = out / f"worker_{kind}.log"
    with open(log, "w") as f:
        try:
            proc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=max(timeout, 1.0))
            status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"killed after {timeout:.0f} s (the rows finished before are kept)"
    data = json.loads(result.read_text()) if result.exists() else {"rows": []}
    data["worker_status"] = status
    if status != "exit 0":
        data["worker_log_tail"] = log.read_text()[-3000:]
    return data


def _fmt(value, digits=1):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    dev = report["device"]
    lines = ["**Dry run: a tiny model with tiny batches; the numbers only show that every row "
             "runs, not how fast anything is.**", ""] if report["dry_run"] else []
    lines += [f"Device: **{dev['name']}**"
             + (f" (compute capability {dev['compute_capability']})" if dev.get("compute_capability") else "")
             + f"; peak TFLOP/s used for MFU: {dev['peaks'] or 'unknown (MFU not computed)'}"
             + (f" (table entry `{dev['peak_key']}`)" if dev.get("peak_key") else "") + ".",
             f"Versions: {report['versions']}. Command: `{report['command']}`.",
             f"Model FLOPs: {FLOP_FORMULA}.", ""]
    for shape in report["shapes"]:
        rows = [r for r in report["rows"] if r["shape"] == shape["name"]]
        gflop = report["flops_per_example"][shape["name"]] / 1e9
        lines.append(f"**{shape['name']}**: seq {shape['seq']}, batch {shape['batch']}, "
                     f"{shape['preds']} predictions, {_fmt(gflop, 2)} GFLOP per example.")
        lines.append("")
        lines.append("| framework | precision | compiler | examples/s | tokens/s | model TFLOP/s | MFU | "
                     "step ms | compile s | note |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["status"] == "ok":
                mfu = f"{r['mfu'] * 100:.1f}%" if r.get("mfu") is not None else "–"
                note = ""
                if r.get("skipped_steps"):
                    note = f"{r['skipped_steps']} steps skipped by loss scaling"
                lines.append(f"| {r['framework']} | {r['precision']} | {r['compiler']} | "
                             f"{_fmt(r['examples_per_s'])} | {_fmt(r['tokens_per_s'], 0)} | "
                             f"{_fmt(r['model_tflops'], 2)} | {mfu} | {_fmt(r['step_ms'], 1)} | "
                             f"{_fmt(r['compile_s'], 1)} | {note} |")
            else:
                why = r.get("reason") or r.get("error", "")
                lines.append(f"| {r['framework']} | {r['precision']} | {r['compiler']} | "
                             f"– | – | – | – | – | – | {r['status']}: {why.replace('|', '/')} |")
        ours = [r for r in rows if r["status"] == "ok" and r["variant"].startswith("tf-")]
        theirs = [r for r in rows if r["status"] == "ok" and r["variant"].startswith("hf-")]
        if ours and theirs:
            a = max(ours, key=lambda r: r["examples_per_s"])
            b = max(theirs, key=lambda r: r["examples_per_s"])
            lines.append("")
            lines.append(f"Best wwm-train ({a['variant']}) / best HuggingFace ({b['variant']}): "
                         f"{a['examples_per_s'] / b['examples_per_s']:.2f}x examples/s.")
        pipe = [p for p in report.get("input_pipeline", []) if p["shape"] == shape["name"]]
        if pipe:
            lines.append(f"wwm-train's tf.data input pipeline alone (host): "
                         f"{_fmt(pipe[0]['examples_per_s'])} examples/s.")
        lines.append("")
    for kind, status in report["workers"].items():
        if status != "exit 0":
            lines.append(f"Worker {kind}: {status}.")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for bench_device.json / .md and worker logs (required)")
    p.add_argument("--dry_run", action="store_true",
                   help="tiny model and batches, on whatever device there is (CPU in CI)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated, run in this order; known: {','.join(VARIANTS)}")
    p.add_argument("--shapes", default=None, help="comma-separated shape names (default: all)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (GPU 20, dry run 2)")
    p.add_argument("--warmup", type=int, default=None, help="steps of the compiling call (GPU 3, dry 1)")
    p.add_argument("--budget_s", type=float, default=None,
                   help="wall-clock budget of the whole run (GPU 450, dry run 900)")
    p.add_argument("--peak_tflops", type=float, default=None,
                   help="override the peak used for MFU (all precisions), e.g. for an unlisted device")
    p.add_argument("--profile", action="store_true",
                   help="also write a TF profiler trace of 3 steps of the first TF row (TensorBoard)")
    p.add_argument("--worker", choices=["tf", "hf"], help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        (tf_worker if args.worker == "tf" else hf_worker)(spec, Path(args.result))
        return 0

    if not args.out:
        p.error("--out is required")
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {unknown}; known: {list(VARIANTS)}")
    all_shapes = DRY_SHAPES if args.dry_run else GPU_SHAPES
    names = [s.name for s in all_shapes]
    shapes = all_shapes if not args.shapes else [s for s in all_shapes if s.name in args.shapes.split(",")]
    if args.shapes and len(shapes) != len(args.shapes.split(",")):
        p.error(f"--shapes must be among {names}, got {args.shapes!r}")
    cfg = TINY if args.dry_run else BASE
    steps = args.steps or (2 if args.dry_run else 20)
    warmup = args.warmup or (1 if args.dry_run else 3)
    budget = args.budget_s or (900.0 if args.dry_run else 450.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    common = {"config": cfg, "shapes": [dataclasses.asdict(s) for s in shapes], "variants": variants,
              "steps": steps, "warmup": warmup, "record_batches": 4 if args.dry_run else 8,
              "pipeline_batches": 5 if args.dry_run else 50,
              "profile_dir": str(out / "profile") if args.profile else None}
    report_rows, info, workers, pipeline = [], {}, {}, []
    hf_wanted = [v for v in variants if v in HF_VARIANTS]
    if hf_wanted:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as e:
            workers["hf"] = f"not run: {e} (pip install torch transformers)"
            report_rows += [_row(v, s, status="skipped", reason=f"{e.name} not installed")
                            for s in shapes for v in hf_wanted]
        else:  # PyTorch first, with at most 40% of the budget: TensorFlow then takes the GPU
            deadline = start + 0.4 * budget
            data = _run_worker("hf", {**common, "deadline": deadline}, out, deadline - time.time() + 60)
            report_rows += data["rows"]
            info.update(data.get("info", {}))
            workers["hf"] = data["worker_status"]
    if any(v in TF_VARIANTS for v in variants):
        deadline = start + budget
        data = _run_worker("tf", {**common, "deadline": deadline}, out, deadline - time.time() + 60)
        report_rows += data["rows"]
        info.update(data.get("info", {}))
        pipeline = data.get("input_pipeline", [])
        workers["tf"] = data["worker_status"]
    device_name = info.get("tf_device") or info.get("torch_device") or "unknown"
    key, peaks = peak_for(device_name)
    if args.peak_tflops:
        key = "--peak_tflops"
        peaks = {k: args.peak_tflops for k in ("float32", "tf32", "bfloat16", "float16")}
    tf32 = info.get("tf_tf32_enabled", False)
    for r in report_rows:
        if r.get("status") != "ok":
            continue
        # TensorFlow runs float32 matmuls as TF32 by default; PyTorch rows here are all autocast
        peak = peak_tflops(peaks, r["precision"], tf32 and r["variant"].startswith("tf-"))
        r["peak_tflops"] = peak
        r["mfu"] = round(r["model_tflops"] / peak, 4) if peak else None
    order = {v: i for i, v in enumerate(VARIANTS)}
    report_rows.sort(key=lambda r: ([s.name for s in shapes].index(r["shape"]), order[r["variant"]]))
    report = {
        "command": " ".join(["python", "benchmarks/bench_device.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "started": datetime.datetime.fromtimestamp(start).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - start, 1),
        "dry_run": args.dry_run,
        "device": {"name": device_name,
                   "compute_capability": (info.get("tf_compute_capability")
                                          or info.get("torch_compute_capability")),
                   "peak_key": key, "peaks": peaks, "tf32_enabled_in_tf": tf32},
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {k: info[k] for k in ("tensorflow", "torch", "transformers") if k in info},
        "flop_formula": FLOP_FORMULA,
        "flops_per_example": {s.name: train_flops_per_example(cfg, s.seq, s.preds) for s in shapes},
        "config": cfg, "shapes": [dataclasses.asdict(s) for s in shapes],
        "steps": steps, "warmup": warmup, "workers": workers, "input_pipeline": pipeline,
        "rows": report_rows,
    }
    (out / "bench_device.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (out / "bench_device.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
