"""benchmarks/bench_device.py: its dry run (tiny model, CPU) runs end to end, and its FLOP count,
peak table and MFU are right. The GPU run itself is the same code with BERT-base shapes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_device.py"


def _bench():
    if "bench_device" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_device", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_device"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["bench_device"]


def _has_torch() -> bool:
    return (importlib.util.find_spec("torch") is not None
            and importlib.util.find_spec("transformers") is not None)


def _dry_run(tmp_path, *args, timeout=1500):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry_run", f"--out={out}",
                           "--peak_tflops=0.5", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((out / "bench_device.json").read_text())
    return report, (out / "bench_device.md").read_text(), proc.stdout


def _check_ok_row(row, bench, report):
    assert row["status"] == "ok", row
    assert row["steps"] == report["steps"] and row["examples_per_s"] > 0
    assert row["tokens_per_s"] == pytest.approx(row["examples_per_s"] * row["seq"], rel=1e-3)
    flops = bench.train_flops_per_example(report["config"], row["seq"], row["preds"])
    assert row["model_tflops"] == pytest.approx(row["examples_per_s"] * flops / 1e12, rel=1e-2, abs=2e-3)
    assert row["mfu"] == pytest.approx(row["model_tflops"] / 0.5, rel=1e-3, abs=1e-4)
    assert row["loss_first"] > 0 and row["loss_last"] > 0


def test_dry_run_of_the_device_benchmark(tmp_path):
    """One TF row with XLA (bfloat16), one without (float16 with loss scaling), and HuggingFace
    eager in PyTorch when it is installed, on the tiny model: JSON and markdown are written."""
    bench = _bench()
    report, md, stdout = _dry_run(tmp_path, "--variants=tf-bf16-xla,tf-fp16,hf-bf16", "--shapes=seq32")
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"tf-bf16-xla", "tf-fp16", "hf-bf16"}
    for variant in ("tf-bf16-xla", "tf-fp16"):
        _check_ok_row(rows[variant], bench, report)
    assert rows["tf-bf16-xla"]["compiler"] == "XLA" and rows["tf-fp16"]["compiler"] == "none"
    assert "skipped_steps" in rows["tf-fp16"] and "loss_scale" in rows["tf-fp16"]
    if _has_torch():
        _check_ok_row(rows["hf-bf16"], bench, report)
        assert report["versions"]["torch"] and report["versions"]["transformers"]
        assert "Best wwm-train" in md
    else:
        assert rows["hf-bf16"]["status"] == "skipped" and "not installed" in rows["hf-bf16"]["reason"]
    assert report["input_pipeline"][0]["examples_per_s"] > 0
    assert report["flop_formula"] == bench.FLOP_FORMULA
    assert "| wwm-train (TF) | bfloat16 | XLA |" in md and md in stdout
    assert md.startswith("**Dry run: a tiny model")


@pytest.mark.slow
def test_dry_run_every_variant(tmp_path):
    """The whole matrix the GPU run does (float32/bfloat16/float16 x XLA on/off, HF eager and
    torch.compile) on both dry-run shapes."""
    bench = _bench()
    # torch.compile of the tiny model's training step took 260 s on a loaded 2-core machine
    report, md, _ = _dry_run(tmp_path, "--budget_s=4000", timeout=5000)
    want = {(v, s.name) for v in bench.DEFAULT_VARIANTS for s in bench.DRY_SHAPES}
    got = {(r["variant"], r["shape"]): r for r in report["rows"]}
    assert set(got) == want
    for (variant, _), row in got.items():
        if variant.startswith("hf-") and not _has_torch():
            assert row["status"] == "skipped"
            continue
        _check_ok_row(row, bench, report)


def test_flop_formula_counts_every_matmul():
    """FLOP_FORMULA against a count made from the model's own variable shapes: each dense kernel
    [n_in, n_out] applied to the rows it sees costs 2 n_in n_out per row; attention adds two
    [S, S] x [S, d] products per head; training is 3x the forward pass."""
    from wwm_trainer import BertConfig
    from wwm_trainer.modeling import google_variable_shapes

    bench = _bench()
    for cfg, seq, preds in [(bench.BASE, 128, 20), (bench.BASE, 512, 80), (bench.TINY, 32, 5)]:
        shapes = google_variable_shapes(BertConfig(**cfg))
        forward = 0
        for name, shape in shapes.items():
            if not name.endswith("/kernel"):
                continue
            rows = seq if name.startswith("bert/encoder/") else (1 if "pooler" in name else preds)
            forward += 2 * rows * shape[0] * shape[1]
        forward += cfg["num_hidden_layers"] * 2 * (2 * seq * seq * cfg["hidden_size"])  # QK^T, PV
        forward += 2 * preds * cfg["hidden_size"] * cfg["vocab_size"]  # MLM logits (tied table)
        forward += 2 * 2 * cfg["hidden_size"]  # NSP logits
        assert bench.train_flops_per_example(cfg, seq, preds) == 3 * forward
    # BERT-base: 69.06 GFLOP per training example at seq 128, 297.99 at 512 (6 x 102M parameters
    # x 128 tokens would be 78 GFLOP: the embedding tables cost no matmul FLOPs, the MLM output
    # layer sees 20 positions, attention adds 4 S^2 H per layer)
    assert bench.train_flops_per_example(bench.BASE, 128, 20) / 1e9 == pytest.approx(69.063, abs=1e-3)
    assert bench.train_flops_per_example(bench.BASE, 512, 80) / 1e9 == pytest.approx(297.986, abs=1e-3)


@pytest.mark.parametrize("name, key, bf16", [
    ("NVIDIA H200", "H200", 989.4),
    ("NVIDIA H200 NVL", r"H200.*NVL", 835.5),
    ("NVIDIA H100 80GB HBM3", r"H100|GH200", 989.4),
    ("NVIDIA H100 PCIe", r"H100.*PCIe", 756.0),
    ("NVIDIA A100-SXM4-80GB", "A100", 312.0),
    ("NVIDIA L40S", "L40S", 362.0),
    ("NVIDIA L4", r"\bL4\b", 121.0),
    ("Tesla V100-SXM2-16GB", "V100", None),
    ("Tesla T4", r"\bT4\b", None),
])
def test_peak_table_lookup(name, key, bf16):
    bench = _bench()
    found, peaks = bench.peak_for(name)
    assert found == key and peaks["bfloat16"] == bf16
    # float32 rows use TF32 where TensorFlow enables it and the device has it
    assert bench.peak_tflops(peaks, "float32", tf32=True) == (peaks["tf32"] or peaks["float32"])
    assert bench.peak_tflops(peaks, "float32", tf32=False) == peaks["float32"]
    assert bench.peak_for("Some Future GPU") == (None, None)
