"""tf_bundle.py: TensorFlow checkpoint bundles read without TensorFlow, and the TF-free
`wwm-train export --format=hf` built on it.

The reference is TensorFlow itself: `tf.train.load_checkpoint` on checkpoints written by the
trainer (a LAMB training checkpoint, float16 loss-scale state included), by `export`, by
tf.compat.v1's Saver (Google's release layout, and a sharded save over two devices), by
tf.train.Checkpoint (object-based names, a string tensor), and by SaveV2 with every dtype the
reader supports. Hostile files are built with a small table writer below (checked first: TensorFlow
reads what it writes) and by mutating real index files (hypothesis).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from wwm_trainer import BertConfig, Trainer, export_model  # noqa: E402
from wwm_trainer import tf_bundle  # noqa: E402
from wwm_trainer.checkpoint import _latest_local, resolve_checkpoint  # noqa: E402
from wwm_trainer.tf_bundle import BundleFormatError, BundleReader  # noqa: E402

from trainer_helpers import (TINY, google_names, tiny_options, write_config,  # noqa: E402
                             write_synthetic_records)

SEQ, PRED = 32, 5
REPO = Path(__file__).resolve().parents[1]


# ============================================================================ comparison
def assert_same_as_tensorflow(prefix: str) -> int:
    """Every tensor of `prefix` read by BundleReader equals tf.train.load_checkpoint's: names,
    dtypes, shapes, values bit for bit, scalars as the same Python/numpy type. Returns the count."""
    ref = tf.train.load_checkpoint(prefix)
    ours = BundleReader(prefix)
    shapes = ref.get_variable_to_shape_map()
    assert ours.get_variable_to_shape_map() == {k: list(v) for k, v in shapes.items()}
    ref_dtypes = ref.get_variable_to_dtype_map()
    for name in shapes:
        assert ours.dtype_name(name) == ref_dtypes[name].name, name
        want, got = ref.get_tensor(name), ours.get_tensor(name)
        assert type(got) is type(want), name
        if isinstance(want, bytes):
            assert got == want
            continue
        assert got.dtype == want.dtype and got.shape == want.shape, name
        if want.dtype == object:
            assert got.tolist() == want.tolist(), name
        else:
            assert got.tobytes() == want.tobytes(), name  # bit for bit (NaN payloads, -0.0)
    return len(shapes)


# ============================================================================ real checkpoints
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny BERT trained 4 LAMB steps (checkpoints at 2 and 4: model, lamb_m/v slots,
    global_step), its Google-format export, a vocab for the HF export."""
    d = tmp_path_factory.mktemp("bundle_trained")
    files = [write_synthetic_records(d / f"part-{i}.tfrecord", 64, seq_len=SEQ, max_pred=PRED,
                                     vocab_size=TINY["vocab_size"], seed=i) for i in range(2)]
    config = write_config(d / "bert_config.json")
    out = d / "out"
    opts = tiny_options(bert_config_file=config, input_file=",".join(files), output_dir=out,
                        max_seq_length=SEQ, max_predictions_per_seq=PRED, num_train_steps=4,
                        save_checkpoints_steps=2)
    Trainer(opts).train()
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + [f"tok{i}" for i in range(TINY["vocab_size"] - 5)]) + "\n")
    cfg = BertConfig.from_json_file(config)
    slim = export_model(str(out), cfg, str(vocab), str(d / "slim"), reader="tensorflow")
    return {"dir": d, "out": str(out), "config": config, "cfg": cfg, "vocab": str(vocab),
            "ckpt": str(out / "model.ckpt-4"), "slim": slim}


@pytest.fixture(scope="module")
def fp16_checkpoint(tmp_path_factory, trained):
    """A float16-precision run: its checkpoint adds the dynamic loss scale's state."""
    d = tmp_path_factory.mktemp("bundle_fp16")
    opts = tiny_options(bert_config_file=trained["config"],
                        input_file=str(trained["dir"] / "part-*.tfrecord"), output_dir=d / "out",
                        max_seq_length=SEQ, max_predictions_per_seq=PRED, precision="float16")
    Trainer(opts).train()
    return resolve_checkpoint(str(d / "out"))


def _tf1_release(path: Path, cfg: dict, seed=0) -> str:
    """Google's release layout as its TF1 code writes it: compat.v1 variables in scopes, Saver."""
    rng = np.random.default_rng(seed)
    g = tf.Graph()
    with g.as_default():
        for name, shape in google_names(cfg).items():
            scope, leaf = name.rsplit("/", 1)
            with tf.compat.v1.variable_scope(scope):
                tf.compat.v1.get_variable(leaf, initializer=(rng.standard_normal(shape) * 0.02)
                                          .astype(np.float32))
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(path / "bert_model.ckpt"), write_meta_graph=False)


def _sharded_saver(path: Path) -> str:
    """tf.compat.v1.train.Saver(sharded=True) over two CPU devices: two data shards."""
    path.mkdir(parents=True, exist_ok=True)
    g = tf.Graph()
    with g.as_default():
        for i in range(6):
            with tf.device(f"/cpu:{i % 2}"):
                tf.compat.v1.get_variable(f"layer_{i}/kernel",
                                          initializer=np.full((7, 3), i + 0.5, np.float32))
        saver = tf.compat.v1.train.Saver(sharded=True)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
        with tf.compat.v1.Session(config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(path / "model.ckpt"), global_step=3, write_meta_graph=False)


def _every_dtype(path: Path) -> tuple[str, dict]:
    """SaveV2 of every dtype the reader supports, scalars, empty tensors and strings."""
    rng = np.random.default_rng(1)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45], np.float32)
    values = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32), "f32_special": special,
        "f64": rng.standard_normal(5), "f16": rng.standard_normal((2, 2)).astype(np.float16),
        "bf16": tf.constant([1.5, -2.25, 3e38], tf.bfloat16), "i8": np.arange(-3, 3, dtype=np.int8),
        "u8": np.arange(250, 256, dtype=np.uint8), "i16": np.array([-300, 300], np.int16),
        "u16": np.array([65535], np.uint16), "i32": np.array([[-1, 2**31 - 1]], np.int32),
        "u32": np.array([2**32 - 1], np.uint32), "i64": np.array([-2**63, 2**63 - 1]),
        "u64": np.array([2**64 - 1], np.uint64), "c64": np.array([1 + 2j], np.complex64),
        "c128": np.array([3 - 4j]), "bool": np.array([True, False, True]),
        "global_step": np.int64(12345), "scalar_f32": np.float32(0.5),
        "empty": np.zeros((0, 4), np.float32), "strings": tf.constant([[b"ab", b""], [b"\xff\x00", b"x" * 300]]),
        "string_scalar": tf.constant(b"hello"), "no_strings": tf.constant([], tf.string),
        "deep/name/with spaces/\u4e2d\u6587": np.ones((1, 1, 1, 2), np.float32),
    }
    prefix = str(path / "dtypes")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(values), shape_and_slices=[""] * len(values),
                      tensors=[tf.convert_to_tensor(v) for v in values.values()])
    return prefix, values


def test_training_checkpoint_with_lamb_slots(trained):
    names = BundleReader(trained["ckpt"]).get_variable_to_shape_map()
    assert any(n.endswith("/lamb_m") for n in names) and "global_step" in names
    assert assert_same_as_tensorflow(trained["ckpt"]) == len(names)
    assert assert_same_as_tensorflow(str(Path(trained["out"]) / "model.ckpt-2"))


def test_float16_run_checkpoint(fp16_checkpoint):
    assert assert_same_as_tensorflow(fp16_checkpoint)


def test_slim_export_and_google_release_layout(trained, tmp_path):
    assert assert_same_as_tensorflow(trained["slim"]) == len(google_names(TINY))
    release = _tf1_release(tmp_path, TINY)
    assert assert_same_as_tensorflow(release) == len(google_names(TINY)) + 1  # + global_step


def test_base_size_release_layout(tmp_path):
    """Google's chinese_L-12_H-768_A-12 layout (12 layers, hidden 768; a 64-entry vocab and 8
    positions keep it small): 206 variables + global_step, whose entries span several index
    blocks (4 KB each) with prefix-compressed keys."""
    cfg = dict(TINY, vocab_size=64, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
               intermediate_size=3072, max_position_embeddings=8)
    prefix = _tf1_release(tmp_path, cfg)
    assert os.path.getsize(prefix + ".index") > 2 * 4096  # at least 3 data blocks
    assert assert_same_as_tensorflow(prefix) == 207


def test_sharded_saver_two_data_files(tmp_path):
    prefix = _sharded_saver(tmp_path / "sharded")
    ours = BundleReader(prefix)
    assert ours.num_shards == 2
    assert {ours.where(n)[-20:] for n in ours.get_variable_to_shape_map()} == {
        ".data-00000-of-00002", ".data-00001-of-00002"}
    assert assert_same_as_tensorflow(prefix) == 6


def test_every_dtype_scalars_strings_and_empty_tensors(tmp_path):
    prefix, values = _every_dtype(tmp_path)
    assert assert_same_as_tensorflow(prefix) == len(values)


def test_object_based_checkpoint(tmp_path):
    """tf.train.Checkpoint names (`.ATTRIBUTES/VARIABLE_VALUE`) and its object graph (a string)."""
    ckpt = tf.train.Checkpoint(w=tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)),
                               step=tf.Variable(7, dtype=tf.int64))
    prefix = ckpt.write(str(tmp_path / "obj"))
    names = BundleReader(prefix).get_variable_to_shape_map()
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in names and "w/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert assert_same_as_tensorflow(prefix) == len(names)


def test_sliced_tensors_max_shard_size_policy(tmp_path):
    """tf.train.Checkpoint's MaxShardSizePolicy stores large tensors in slices over several
    shards (starts up to 17,500: multi-byte ordered codes); they are put together again."""
    values = {"big": tf.Variable(np.arange(60000, dtype=np.float32).reshape(20000, 3)),
              "cube": tf.Variable(np.arange(2000, dtype=np.int64).reshape(4, 50, 10)),
              "small": tf.Variable([1.5, 2.5])}
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=30000)
    prefix = tf.train.Checkpoint(**values).write(
        str(tmp_path / "sliced"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    ours = BundleReader(prefix)
    assert ours.num_shards > 2 and len(ours._entries["big/.ATTRIBUTES/VARIABLE_VALUE"].sliced) > 5
    assert assert_same_as_tensorflow(prefix) == 4


def test_partitioned_variables_of_a_tf1_saver(tmp_path):
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.get_variable("p", shape=[100, 4], partitioner=tf.compat.v1.fixed_size_partitioner(3))
        tf.compat.v1.get_variable("q", shape=[200, 70],
                                  partitioner=tf.compat.v1.fixed_size_partitioner(2, axis=1))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "m"), write_meta_graph=False)
    assert [len(BundleReader(prefix)._entries[n].sliced) for n in "pq"] == [3, 2]
    assert assert_same_as_tensorflow(prefix) == 2


def test_ordered_code_of_slice_names():
    """The examples of tensorflow/core/lib/strings/ordered_code.cc, and the escapes."""
    assert tf_bundle._ordered_signed(0x424242) == bytes.fromhex("f0424242")
    assert tf_bundle._ordered_signed(-0x800) == bytes.fromhex("3800")
    assert tf_bundle._ordered_signed(5) == b"\x85" and tf_bundle._ordered_signed(-1) == b"\x7f"
    assert tf_bundle._ordered_signed(63) == b"\xbf" and tf_bundle._ordered_signed(64) == b"\xc0\x40"
    assert tf_bundle._ordered_signed(-64) == b"\x40" and tf_bundle._ordered_signed(-65) == b"\x3f\xbf"
    assert len(tf_bundle._ordered_signed(2**63 - 1)) == 10 == len(tf_bundle._ordered_signed(-2**63))
    assert tf_bundle._ordered_unsigned(0) == b"\x00" and tf_bundle._ordered_unsigned(258) == b"\x02\x01\x02"
    assert tf_bundle._slice_key("a\x00", [(0, -1)]) == b"\x00a\x00\xff\x00\x01\x01\x01\x80\x7f"


def test_large_tensor_read_in_place(tmp_path):
    """A 64 MB tensor (BERT-base's word embeddings are 65 MB): bit-exact, CRC checked."""
    value = np.random.default_rng(0).standard_normal((21128, 768)).astype(np.float32)
    prefix = str(tmp_path / "big")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["e"], shape_and_slices=[""], tensors=[value])
    got = BundleReader(prefix).get_tensor("e")
    assert got.flags.c_contiguous and got.tobytes() == value.tobytes()


# ============================================================================ checkpoint paths
def test_latest_checkpoint_without_tensorflow(trained, tmp_path):
    out = trained["out"]
    assert _latest_local(out) == tf.train.latest_checkpoint(out)
    d = tmp_path / "states"
    d.mkdir()
    for f in Path(trained["ckpt"]).parent.glob("model.ckpt-4.*"):
        shutil.copy(f, d / f.name.replace("model.ckpt-4", 'we"ird ck'))
        shutil.copy(f, d / f.name.replace("model.ckpt-4", "\u6a21\u578b"))
    # (no backslash in the name: TensorFlow globs the path, where a backslash escapes)
    cases = [
        'model_checkpoint_path: "we\\"ird ck"\n',  # an escaped quote
        f'model_checkpoint_path: "{d}/we\\"ird ck"\nall_model_checkpoint_paths: "x"\n',
        'model_checkpoint_path: "\\346\\250\\241\\345\\236\\213"\n',  # UTF-8 in octal escapes
        'model_checkpoint_path: "missing"\n',  # its .index does not exist: None
        'model_checkpoint_path: "missing"\nmodel_checkpoint_path: "we\\"ird ck"\n',
    ]
    for text in cases:
        (d / "checkpoint").write_text(text)
        assert _latest_local(str(d)) == tf.train.latest_checkpoint(str(d)), text
    (d / "checkpoint").write_text("")  # TensorFlow raises "Invalid checkpoint state"; so do we
    with pytest.raises(ValueError):
        tf.train.latest_checkpoint(str(d))
    with pytest.raises(ValueError, match="no checkpoint found in directory"):
        resolve_checkpoint(str(d))
    os.remove(d / "checkpoint")
    assert _latest_local(str(d)) is None is tf.train.latest_checkpoint(str(d))


# ============================================================================ the HF export without TensorFlow
def _cli(*argv, env_extra=None, without_tensorflow=False):
    """`wwm-train ARGV` (cli.main) in a fresh interpreter, reporting the modules it loaded.
    `without_tensorflow`: as if TensorFlow were not installed (its import raises ImportError)."""
    block = "sys.modules['tensorflow'] = None\n" if without_tensorflow else ""
    code = ("import sys, json\n" + block + "from wwm_trainer.cli import main\nrc = main(sys.argv[1:])\n"
            "print(json.dumps({'rc': rc, 'tf': sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tensorflow', 'keras', 'torch'))}))\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env_extra or {})}, timeout=600)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report, proc


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def test_hf_export_imports_no_tensorflow_and_equals_the_tensorflow_path(trained, tmp_path):
    report, proc = _cli("export", "--format=hf", f"--checkpoint={trained['out']}",
                        f"--bert_config_file={trained['config']}",
                        f"--vocab_file={trained['vocab']}", f"--export_dir={tmp_path / 'cli'}")
    assert report == {"rc": 0, "tf": []}, proc.stderr
    assert "exported" in proc.stdout
    via_tf = export_model(trained["out"], trained["cfg"], trained["vocab"], str(tmp_path / "tf"),
                          format="hf", reader="tensorflow")
    assert _files(tmp_path / "cli") == _files(via_tf)  # model.safetensors byte for byte


@pytest.mark.parametrize("source", ["out", "ckpt", "slim", "release"])
def test_hf_export_bytes_equal_with_either_reader(trained, tmp_path, source):
    checkpoint = (_tf1_release(tmp_path, TINY) if source == "release" else trained[source])
    folders = [export_model(checkpoint, trained["cfg"], trained["vocab"], str(tmp_path / reader),
                            format="hf", reader=reader) for reader in ("numpy", "tensorflow")]
    a, b = (_files(f) for f in folders)
    assert a == b and a["model.safetensors"]


def test_google_export_equal_with_either_reader(trained, tmp_path):
    outs = [export_model(trained["ckpt"], trained["cfg"], None, str(tmp_path / r), reader=r)
            for r in ("numpy", "tensorflow")]
    a, b = (tf.train.load_checkpoint(o) for o in outs)
    names = a.get_variable_to_shape_map()
    assert names == b.get_variable_to_shape_map() and "global_step" not in names
    for n in names:
        assert a.get_tensor(n).tobytes() == b.get_tensor(n).tobytes()


def test_hf_export_runs_without_tensorflow_installed(trained, tmp_path):
    report, proc = _cli("export", "--format=hf", f"--checkpoint={trained['ckpt']}",
                        f"--bert_config_file={trained['config']}",
                        f"--vocab_file={trained['vocab']}", f"--export_dir={tmp_path / 'a'}",
                        without_tensorflow=True)
    assert report["rc"] == 0, proc.stderr
    via_tf = export_model(trained["ckpt"], trained["cfg"], trained["vocab"], str(tmp_path / "tf"),
                          format="hf", reader="tensorflow")
    assert _files(tmp_path / "a") == _files(via_tf)
    # the Google format says which extra to install
    report, proc = _cli("export", f"--checkpoint={trained['ckpt']}",
                        f"--bert_config_file={trained['config']}", f"--export_dir={tmp_path / 'g'}",
                        without_tensorflow=True)
    assert report["rc"] == 2 and "TensorFlow is not installed" in proc.stderr
    assert "wwm-fast[train]" in proc.stderr


def test_hf_export_of_a_corrupt_checkpoint_is_one_clear_error(trained, tmp_path):
    ckpt = tmp_path / "c"
    ckpt.mkdir()
    for f in Path(trained["ckpt"]).parent.glob("model.ckpt-4.*"):
        shutil.copy(f, ckpt / f.name)
    data = next(ckpt.glob("*.data-*"))
    reader = BundleReader(str(ckpt / "model.ckpt-4"))
    entry = reader._entries["bert/embeddings/word_embeddings"]
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 5] ^= 0x40
    data.write_bytes(bytes(raw))
    report, proc = _cli("export", "--format=hf", f"--checkpoint={ckpt / 'model.ckpt-4'}",
                        f"--bert_config_file={trained['config']}",
                        f"--vocab_file={trained['vocab']}", f"--export_dir={tmp_path / 'x'}")
    assert report == {"rc": 2, "tf": []}
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("wwm-train: error: checkpoint data file ") and str(data) in line
    assert "'bert/embeddings/word_embeddings'" in line and "CRC32C" in line
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.tmp-*"))


def test_remote_or_tensorflow_paths_still_import_tensorflow(trained, tmp_path):
    """The Google format still writes with TensorFlow."""
    report, proc = _cli("export", f"--checkpoint={trained['out']}",
                        f"--bert_config_file={trained['config']}", f"--export_dir={tmp_path / 'g'}")
    assert report["rc"] == 0 and "tensorflow" in report["tf"], proc.stderr


# ============================================================================ a table writer (tests only)
def _v(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _field(number: int, wire: int, value) -> bytes:
    key = _v(number << 3 | wire)
    if wire == 0:
        return key + _v(value % (1 << 64))
    if wire == 5:
        return key + struct.pack("<I", value)
    return key + _v(len(value)) + value


def _entry(dtype=1, shape=(2,), shard=0, offset=0, size=8, crc=0, extra=b"") -> bytes:
    shape_proto = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    return (_field(1, 0, dtype) + _field(2, 2, shape_proto) + (_field(3, 0, shard) if shard else b"")
            + (_field(4, 0, offset) if offset else b"") + _field(5, 0, size) + _field(6, 5, crc) + extra)


def _header(num_shards=1, endianness=0, min_consumer=0) -> bytes:
    version = _field(1, 0, 1) + (_field(2, 0, min_consumer) if min_consumer else b"")
    return (_field(1, 0, num_shards) + (_field(2, 0, endianness) if endianness else b"")
            + _field(3, 2, version))


def _block(entries, restart_interval=16, shared_override=None) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = len(os.path.commonprefix([prev, key]))
        if shared_override is not None and i == len(entries) - 1:
            shared = shared_override
        out += _v(shared) + _v(len(key) - min(shared, len(key))) + _v(len(value))
        out += key[shared:] + value
        prev = key
    restarts = restarts or [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _with_trailer(block: bytes, kind: int = 0) -> bytes:
    return block + bytes([kind]) + struct.pack("<I", _mask(tf_bundle.crc32c(block + bytes([kind]))))


def _table(entries, per_block=3, kind=0, handles=None) -> bytes:
    """An SSTable as TensorFlow's TableBuilder lays it out: data blocks, an empty metaindex
    block, the index block, the footer. `handles` overrides the index block's handles."""
    out, index = bytearray(), []
    for i in range(0, max(len(entries), 1), per_block):
        chunk = entries[i:i + per_block]
        block = _block(chunk)
        index.append(((chunk[-1][0] if chunk else b"") + b"\xff", (len(out), len(block))))
        out += _with_trailer(block, kind)
    if handles is not None:
        new = handles([h for _, h in index])
        index = [(k, h) for (k, _), h in zip(index, new)] + [
            (b"\xff" * (i + 9), h) for i, h in enumerate(new[len(index):])]
    meta = (len(out), len(_block([])))
    out += _with_trailer(_block([]))
    index_block = _block([(k, _v(o) + _v(s)) for k, (o, s) in index], restart_interval=1)
    handle = (len(out), len(index_block))
    out += _with_trailer(index_block)
    footer = (_v(meta[0]) + _v(meta[1]) + _v(handle[0]) + _v(handle[1])).ljust(40, b"\0")
    return bytes(out + footer + struct.pack("<Q", 0xDB4775248B80FB57))


def _write_bundle(prefix: Path, tensors: dict, *, header=None, entry_overrides=None, **table_kw):
    """A bundle of float32 `tensors` written with the test writer; `entry_overrides` replaces
    the protobuf of some entries (name -> bytes)."""
    data, entries = bytearray(), []
    for name, value in tensors.items():
        raw = np.ascontiguousarray(value, np.float32).tobytes()
        proto = _entry(1, value.shape, 0, len(data), len(raw), _mask(tf_bundle.crc32c(raw)))
        entries.append((name.encode(), proto))
        data += raw
    overrides = entry_overrides or {}
    entries = [(k, overrides.get(k.decode(), v)) for k, v in entries]
    entries = [(b"", _header() if header is None else header)] + entries
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    Path(f"{prefix}.index").write_bytes(_table(entries, **table_kw))
    return str(prefix)


TENSORS = {f"layer_{i}/w": np.arange(i * 6, i * 6 + 6, dtype=np.float32).reshape(2, 3)
           for i in range(7)}


def test_the_test_writer_writes_what_tensorflow_reads(tmp_path):
    prefix = _write_bundle(tmp_path / "ok", TENSORS)  # 3 data blocks, restarts, shared prefixes
    assert assert_same_as_tensorflow(prefix) == len(TENSORS)


def _raises(prefix, match, *, on_read=None):
    """BundleFormatError naming the index or data file (and the tensor, when reading one), whose
    message without the file names matches `match`."""
    with pytest.raises(BundleFormatError) as info:
        reader = BundleReader(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    text = str(info.value)
    assert prefix in text
    assert re.search(match, re.sub(re.escape(prefix) + r"[.\w-]*", "<file>", text)), text
    if on_read is not None:
        assert f"'{on_read}'" in text
    return text


W = "layer_3/w"


# name, keyword arguments of _write_bundle, message pattern, tensor named
HOSTILE = [
    # 0: an entry's bytes lie past the end of the data file
    ("past_end", dict(entry_overrides={W: _entry(1, (2, 3), 0, 10**6, 24)}), r"past the end", W),
    # 1: size disagrees with dtype x shape
    ("size", dict(entry_overrides={W: _entry(1, (2, 3), 0, 72, 20)}), r"size 20 bytes", W),
    # 2: shard 1 of a 1-shard bundle
    ("shard", dict(entry_overrides={W: _entry(1, (2, 3), 1, 72, 24)}), r"shard 1 outside", W),
    # 3: a negative offset (two's complement varint)
    ("negative", dict(entry_overrides={W: _entry(1, (2, 3), 0, -8, 24)}), r"negative offset", W),
    # 4: 2^62 elements
    ("huge", dict(entry_overrides={W: _entry(1, (2**31, 2**31), 0, 0, 24)}), r"too many elements", W),
    # 5: negative dimension
    ("negdim", dict(entry_overrides={W: _entry(1, (-1, 3), 0, 0, 24)}), r"invalid shape", W),
    # 6: rank 40
    ("rank", dict(entry_overrides={W: _entry(1, (1,) * 40, 0, 72, 4)}), r"invalid shape", W),
    # 7: a resource tensor
    ("resource", dict(entry_overrides={W: _entry(20, (), 0, 72, 0)}), r"dtype resource is not supported", W),
    # 8: a dtype number TensorFlow does not have
    ("dtype99", dict(entry_overrides={W: _entry(99, (2,), 0, 72, 8)}), r"dtype 99 is not supported", W),
    # 9: a wrong CRC in the entry
    ("crc", dict(entry_overrides={W: _entry(1, (2, 3), 0, 72, 24, 12345)}), r"fails its CRC32C", W),
    # 10: a 11-byte varint
    ("varint", dict(entry_overrides={W: b"\x08" + b"\xff" * 10 + b"\x01"}), r"varint", W),
    # 11: a length-delimited field longer than its message
    ("field_len", dict(entry_overrides={W: b"\x12\x7f\x00"}), r"runs past the end of its", W),
    # 12: a group (wire type 3)
    ("group", dict(entry_overrides={W: b"\x0b"}), r"wire type 3", W),
    # 13: field number 0
    ("field0", dict(entry_overrides={W: b"\x00\x00"}), r"field number 0", W),
    # 14: a shape field of the wrong wire type
    ("wire", dict(entry_overrides={W: b"\x10\x05"}), r"wire type 0, expected 2", W),
    # 15: unknown rank (a second shape field: protobuf merges the two)
    ("unknown_rank", dict(entry_overrides={W: _entry(1, ()) + _field(2, 2, _field(3, 0, 1))}),
     r"unknown rank", W),
    # 16: a shape split over two fields, merged as protobuf does: [2] + [3] = [2, 3], reads
    ("merged_shape", dict(entry_overrides={W: _entry(1, (2,), 0, 72, 24, 0)[:-5]
                                           + _field(2, 2, _field(2, 2, _field(1, 0, 3)))}), r"CRC32C", W),
    # 17: zero shards
    ("zero_shards", dict(header=_header(0)), r"0 data shards", None),
    # 18: big-endian
    ("big_endian", dict(header=_header(1, 1)), r"big-endian", None),
    # 19: a newer format
    ("newer", dict(header=_header(1, 0, 7)), r"newer TensorFlow", None),
    # 20: snappy-compressed blocks
    ("snappy", dict(kind=1), r"snappy-compressed", None),
    # 21: an unknown compression type
    ("kind9", dict(kind=9), r"unknown compression type 9", None),
    # 22: two index entries naming the same data block
    ("overlap", dict(handles=lambda real: [real[0], real[0]]), r"overlaps", None),
    # 23: a block handle past the end
    ("handle_past", dict(handles=lambda real: [(0, 10**9)]), r"overlaps|runs past", None),
    # 24: a data block after the index block
    ("after_index", dict(handles=lambda real: real[:1] + [(real[-1][0] + 10**4, 10)]), r"overlaps", None),
]


@pytest.mark.parametrize("name, kw, match, tensor", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_index_entries(tmp_path, name, kw, match, tensor):
    prefix = _write_bundle(tmp_path / "b", TENSORS, **kw)
    _raises(prefix, match, on_read=tensor)


def test_no_header_entry(tmp_path):
    prefix = str(tmp_path / "b")
    Path(prefix + ".data-00000-of-00001").write_bytes(b"\0" * 200)
    Path(prefix + ".index").write_bytes(
        _table([(k.encode(), _entry(1, v.shape, 0, 0, 24)) for k, v in TENSORS.items()]))
    _raises(prefix, r"no header entry")


def _sliced_bundle(prefix: str, slices, stored=None) -> str:
    """A float32 [4, 2] tensor "t" in `slices` ((start, length) of dim 0); `stored` overrides
    which slices are stored (default: the same)."""
    data, entries = bytearray(), []
    for start, length in (slices if stored is None else stored):
        raw = np.arange(start * 2, (start + length) * 2, dtype=np.float32).tobytes()
        key = tf_bundle._slice_key("t", [(start, length), (0, 2)])
        entries.append((key, _entry(1, (length, 2), 0, len(data), len(raw), _mask(tf_bundle.crc32c(raw)))))
        data += raw
    extents = b"".join(_field(7, 2, _field(1, 2, _field(1, 0, a) + _field(2, 0, n))
                                  + _field(1, 2, _field(2, 0, 2))) for a, n in slices)
    entries.append((b"t", _field(1, 0, 1) + _field(2, 2, _field(2, 2, _field(1, 0, 4))
                                                   + _field(2, 2, _field(1, 0, 2))) + extents))
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))
    Path(prefix + ".index").write_bytes(_table([(b"", _header())] + sorted(entries)))
    return prefix


def test_hostile_slices(tmp_path):
    ok = _sliced_bundle(str(tmp_path / "ok"), [(0, 1), (1, 3)])
    assert BundleReader(ok).get_tensor("t").tobytes() == np.arange(8, dtype=np.float32).tobytes()
    assert_same_as_tensorflow(ok)
    cases = {
        "gap": ([(0, 1), (2, 2)], None, r"do not cover"),
        "overlap": ([(0, 2), (1, 1), (3, 1)], None, r"slice \[\(1, 2\), \(0, 2\)\] overlaps another"),
        "missing": ([(0, 1), (1, 3)], [(0, 1)], r"slice \[\(1, 4\), \(0, 2\)\] is missing"),
        "outside": ([(0, 1), (1, 9)], [(0, 1)], r"outside a dimension of 4"),
    }
    for i, (slices, stored, match) in enumerate(cases.values()):
        _raises(_sliced_bundle(str(tmp_path / f"case{i}"), slices, stored), match, on_read="t")


def test_keys_out_of_order_and_duplicates(tmp_path):
    for i, keys in enumerate(([b"b", b"a"], [b"a", b"a"])):
        prefix = str(tmp_path / f"o{i}")
        entries = [(b"", _header())] + [(k, _entry(1, (0,), 0, 0, 0)) for k in keys]
        Path(prefix + ".index").write_bytes(_table(entries, per_block=1))
        _raises(prefix, r"keys out of order")


def test_malformed_blocks(tmp_path):
    entries = [(b"", _header())] + [(f"k{i}".encode(), _entry(1, (0,), 0, 0, 0)) for i in range(3)]
    cases = {
        # a key sharing more bytes than the previous key has
        "shared": (_block(entries, shared_override=9), r"shares 9 bytes"),
        # a restart count the block cannot hold
        "restarts": (_block(entries)[:-4] + struct.pack("<I", 10**6), r"restart points"),
        # a restart point past the entries
        "restart_past": (_block(entries)[:-8] + struct.pack("<II", 10**5, 1), r"restart point 0"),
        # shorter than its restart count
        "tiny": (b"\x01", r"shorter than its restart count"),
    }
    for name, (block, match) in cases.items():
        prefix = str(tmp_path / f"case{len(name)}{name[:1]}")
        body = _with_trailer(block)
        meta = _with_trailer(_block([]))
        index_block = _block([(b"\xff", _v(0) + _v(len(block)))], restart_interval=1)
        footer = (_v(len(body)) + _v(len(meta) - 5) + _v(len(body) + len(meta))
                  + _v(len(index_block))).ljust(40, b"\0")
        Path(prefix + ".index").write_bytes(body + meta + _with_trailer(index_block) + footer
                                            + struct.pack("<Q", 0xDB4775248B80FB57))
        _raises(prefix, match)


def test_string_tensor_corruptions(tmp_path):
    prefix = str(tmp_path / "s")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["s"], shape_and_slices=[""],
                      tensors=[tf.constant([b"abc", b"de"])])
    data = Path(prefix + ".data-00000-of-00001")
    good = data.read_bytes()
    for pos, match in ((0, "string lengths fail"), (1, "string lengths fail"), (6, "CRC32C")):
        raw = bytearray(good)
        raw[pos] ^= 0x01
        data.write_bytes(bytes(raw))
        _raises(prefix, match, on_read="s")


# ============================================================================ damaged real files
def _copy(src_prefix: str, dst: Path) -> str:
    dst.mkdir(parents=True, exist_ok=True)
    src = Path(src_prefix)
    for f in src.parent.glob(src.name + ".*"):
        if f.name.endswith(".index") or ".data-" in f.name:
            shutil.copy(f, dst / f.name)
    return str(dst / src.name)


def test_truncated_and_missing_files(trained, tmp_path):
    prefix = _copy(trained["ckpt"], tmp_path / "t")
    index = Path(prefix + ".index")
    good = index.read_bytes()
    for cut in (0, 10, 47, len(good) // 2, len(good) - 1):
        index.write_bytes(good[:cut])
        _raises(prefix, r"truncated|footer|magic|runs past")
    index.write_bytes(good)
    data = next(Path(prefix).parent.glob("*.data-*"))
    full = data.read_bytes()
    data.write_bytes(full[: len(full) // 2])
    text = _raises(prefix, r"truncated")
    assert str(data) in text
    data.unlink()
    assert str(data) in _raises(prefix, r"cannot read")
    index.unlink()
    _raises(prefix, r"not found")


def test_every_flipped_index_byte_is_caught(trained, tmp_path):
    """Each byte of a real index flipped in turn: the CRCs or the footer checks catch every one
    (or the flip is in the footer's padding or unused metaindex handle, which TensorFlow also
    ignores)."""
    prefix = _copy(trained["slim"], tmp_path / "f")
    index = Path(prefix + ".index")
    good = index.read_bytes()
    caught = 0
    for pos in range(len(good)):
        raw = bytearray(good)
        raw[pos] ^= 0x10
        index.write_bytes(bytes(raw))
        try:
            BundleReader(prefix)
        except BundleFormatError as e:
            assert prefix in str(e)
            caught += 1
    assert caught >= len(good) - 40


# ============================================================================ fuzz
@pytest.fixture(scope="module")
def fuzz_seed_files(tmp_path_factory):
    """Valid bundles to mutate: the test writer's, SaveV2's of every dtype (strings included), and
    a sliced one (MaxShardSizePolicy: slice entries, several shards). name -> (index bytes, prefix)."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / "ours").mkdir()
    (d / "real").mkdir()
    ours = _write_bundle(d / "ours" / "seed", {k: v for k, v in list(TENSORS.items())[:4]})
    real, _ = _every_dtype(d / "real")
    values = {"a": tf.Variable(np.arange(600, dtype=np.float32).reshape(60, 10)),
              "b": tf.Variable(np.arange(30, dtype=np.int64))}
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=1000)
    sliced = tf.train.Checkpoint(**values).write(
        str(d / "sliced" / "ck"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    return {name: (Path(prefix + ".index").read_bytes(), prefix)
            for name, prefix in (("ours", ours), ("real", real), ("sliced", sliced))}


def _read_all(prefix: str) -> None:
    """Opens and reads every tensor: only BundleFormatError may come out."""
    try:
        reader = BundleReader(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except BundleFormatError as e:
        assert prefix in str(e)


_edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=timedelta(seconds=20),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["ours", "real", "sliced"]), edits=_edits, cut=st.integers(0, 4000),
       recrc=st.booleans())
def test_fuzz_mutated_index(fuzz_seed_files, which, edits, cut, recrc):
    """Bytes of a valid index overwritten (optionally with every block's CRC made valid again, so
    that the entry and protobuf parsers see the damage) and the file cut: a BundleFormatError or
    a successful read, never another exception or a hang. (Each example writes the index next to
    the original data files.)"""
    good, prefix = fuzz_seed_files[which]
    raw = bytearray(good)
    for pos, value in edits:
        raw[pos % len(raw)] = value
    if recrc:
        _recrc_blocks(raw)
    raw = raw[:cut] if cut < len(raw) else raw
    Path(prefix + ".index").write_bytes(bytes(raw))
    try:
        _read_all(prefix)
    finally:
        Path(prefix + ".index").write_bytes(good)


def _recrc_blocks(raw: bytearray) -> None:
    """Makes the trailer CRC of every block of a (mutated) index valid again, following the
    original layout: blocks end where the next starts (5-byte trailers), the footer is last."""
    if len(raw) < 48:
        return
    try:
        end = len(raw) - 48
        # walk the handles the footer and index name; stop at anything inconsistent
        footer = bytes(raw[end:end + 40])
        pos, handles = 0, []
        for _ in range(2):
            off, pos = tf_bundle._varint(footer, pos, 40, lambda: "f")
            size, pos = tf_bundle._varint(footer, pos, 40, lambda: "f")
            handles.append((off, size))
        index_off, index_size = handles[1]
        if index_off + index_size + 5 > end:
            return
        block = memoryview(bytes(raw[index_off:index_off + index_size]))
        reader = BundleReader.__new__(BundleReader)
        reader.index_path = "fuzz"
        for _, value in reader._block_entries(block, "index"):
            off, size, _ = tf_bundle._block_handle(value, 0, len(value), lambda: "h")
            handles.append((off, size))
    except (BundleFormatError, ValueError):
        pass
    for off, size in handles:
        if off + size + 5 <= len(raw) - 48:
            kind = raw[off + size]
            crc = _mask(tf_bundle.crc32c(bytes(raw[off:off + size]) + bytes([kind])))
            raw[off + size + 1:off + size + 5] = struct.pack("<I", crc)


@settings(max_examples=200, deadline=timedelta(seconds=20),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(protos=st.lists(st.binary(max_size=40), min_size=1, max_size=5),
       keys=st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=5, unique=True))
def test_fuzz_entry_protobufs(tmp_path_factory, protos, keys):
    """Arbitrary bytes as entry protobufs (and arbitrary keys) in a well-formed table."""
    d = tmp_path_factory.mktemp("fuzzproto", numbered=True)
    prefix = str(d / "p")
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(range(256)) * 4)
    entries = [(b"", _header())] + sorted(zip(keys, protos))
    Path(prefix + ".index").write_bytes(_table(entries))
    _read_all(prefix)


def test_reader_module_imports_no_tensorflow():
    code = ("import sys\nfrom wwm_trainer import tf_bundle, hf, config\n"
            "assert not [m for m in sys.modules if m.startswith('tensorflow')], 'tensorflow'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert "import tensorflow" not in (REPO / "trainer" / "tf_bundle.py").read_text()
