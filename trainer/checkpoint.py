"""Checkpoints in Google's TF1 layout: flat names, `global_step`, slots, a `checkpoint` state file.

A TF2 object-based checkpoint would name variables `model/_vars/.../.ATTRIBUTES/VARIABLE_VALUE`;
here every tensor is written under its Google name with the SaveV2 op itself, so
`tf.train.list_variables` and `tf.compat.v1.train.init_from_checkpoint` read ours unchanged. Tools
that load every variable of a file need `export_model`'s slim release: transformers 4.x's TF
loader, for one, skips only `adam_*` slots and breaks on `lamb_m`/`lamb_v`.

Saves are atomic the way TF1's Saver is: the tensors go to a temporary directory, are merged into
`model.ckpt-<step>.{index,data-*}`, and only then is the `checkpoint` state file replaced (write to
a temporary name, rename). A crash at any point leaves "latest" naming the previous, complete
checkpoint.

`init_from_checkpoint` and `export_model` also read transformers BERT folders, and `export_model`
writes them (`format="hf"`); the name map and the file formats are in hf.py.

TensorFlow is imported on first use (`tf` below is a proxy that imports it when an attribute is
first read): `export_model` reads local checkpoints with tf_bundle.py, so an export to a
transformers folder runs without TensorFlow (its import takes seconds); every other function here
uses TensorFlow.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import posixpath
import re
import uuid
from dataclasses import dataclass, field

import numpy as np

from . import hf, tf_bundle
from .config import BertConfig, google_variable_shapes


class _LazyTensorFlow:
    """`tensorflow`, imported when one of its attributes is first read."""

    def __getattr__(self, name):
        import tensorflow

        return getattr(tensorflow, name)


tf = _LazyTensorFlow()

log = logging.getLogger("wwm_trainer")

STATE_FILENAME = "checkpoint"
RELEASE_NAME = "bert_model.ckpt"
_SLOT_RE = re.compile(r"/(lamb|adam)_[mv]$")


def _join(*parts):
    return posixpath.join(*parts) if parts[0].startswith(("gs://", "s3://", "hdfs://")) else os.path.join(*parts)


def _to_tensor(value):
    if isinstance(value, tf.Variable):
        return value.read_value()
    return tf.convert_to_tensor(value)


class NonFiniteCheckpointError(ValueError):
    """A value to be saved is NaN or infinite; nothing was written."""


def write_checkpoint(prefix: str, tensors: dict, check_finite: bool = True) -> str:
    """Writes `tensors` (name -> variable, tensor or array) as a TF1 checkpoint at `prefix`.

    Atomic per file set: written to `<prefix>_temp_<id>/part` then merged (renamed) into place.
    With `check_finite`, a NaN/Inf in any floating tensor raises NonFiniteCheckpointError naming
    it, before anything is written. Returns `prefix`.
    """
    if not tensors:
        raise ValueError("nothing to write: the tensor dict is empty")
    names = list(tensors)
    parent = os.path.dirname(prefix) if "://" not in prefix else posixpath.dirname(prefix)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp_dir = f"{prefix}_temp_{uuid.uuid4().hex}"
    tmp_prefix = _join(tmp_dir, "part")
    with tf.device("CPU:0"):
        values = [_to_tensor(tensors[n]) for n in names]
        if check_finite:
            for name, value in zip(names, values):
                if value.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(value))):
                    raise NonFiniteCheckpointError(
                        f"refusing to write checkpoint {prefix}: variable {name!r} contains "
                        f"NaN or Inf")
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=values)
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=[tmp_prefix], destination_prefix=prefix,
                                      delete_old_dirs=True)
    if tf.io.gfile.exists(tmp_dir):
        tf.io.gfile.rmtree(tmp_dir)
    return prefix


def _atomic_write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _exists(path: str) -> bool:
    return tf.io.gfile.exists(path) if "://" in path else os.path.exists(path)


_STATE_LINE = re.compile(rb'\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*')


def _latest_local(directory: str) -> str | None:
    """`tf.train.latest_checkpoint(directory)` for a local directory, without TensorFlow: the
    prefix the `checkpoint` state file names (relative to `directory` unless absolute), if its
    `.index` exists."""
    try:
        with open(os.path.join(directory, STATE_FILENAME), "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    latest = None
    for line in text.splitlines():  # a text-format CheckpointState: the last value wins
        m = _STATE_LINE.fullmatch(line)
        if m:
            latest = codecs.escape_decode(m.group(1))[0].decode("utf-8", "surrogateescape")
    if not latest:
        return None
    if not os.path.isabs(latest):
        latest = os.path.join(directory, latest)
    return latest if os.path.exists(latest + ".index") else None


def resolve_checkpoint(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint, or the
    bert_model.ckpt of a release folder); ValueError if none. Local paths are resolved without
    TensorFlow."""
    local = "://" not in path
    if os.path.isdir(path) if local else tf.io.gfile.isdir(path):
        latest = _latest_local(path) if local else tf.train.latest_checkpoint(path)
        if latest is None:
            release = _join(path, RELEASE_NAME)
            if _exists(release + ".index"):  # a release: Google's or `export`'s
                return release
            raise ValueError(f"no checkpoint found in directory {path} (no '{STATE_FILENAME}' "
                             f"state file naming one, no {RELEASE_NAME})")
        return latest
    if not _exists(path + ".index"):
        raise ValueError(f"checkpoint {path} not found ({path}.index does not exist)")
    return path


def list_checkpoint(path: str) -> dict[str, list[int]]:
    """name -> shape of a TF1 checkpoint (what `tf.train.list_variables` prints)."""
    return {name: list(shape) for name, shape in tf.train.list_variables(resolve_checkpoint(path))}


class CheckpointManager:
    """`model.ckpt-<step>` checkpoints in `directory`, the `checkpoint` state file, retention.

    `save` writes a checkpoint plus an `<prefix>.input_state.json` sidecar (examples consumed per
    input pipeline and the input settings, for exact data-position resume), then atomically points
    the state file at it and deletes checkpoints beyond `max_to_keep` (oldest first).
    """

    def __init__(self, directory: str, max_to_keep: int = 5, basename: str = "model.ckpt"):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep!r}")
        self.directory, self.max_to_keep, self.basename = directory, max_to_keep, basename

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def _all(self) -> list[str]:
        state = tf.train.get_checkpoint_state(self.directory)
        if state is None:
            return []
        return [p if os.path.isabs(p) or "://" in p else _join(self.directory, p)
                for p in state.all_model_checkpoint_paths]

    def save(self, step: int, tensors: dict, input_state: dict | None = None) -> str:
        tf.io.gfile.makedirs(self.directory)
        prefix = _join(self.directory, f"{self.basename}-{int(step)}")
        write_checkpoint(prefix, tensors)
        if input_state is not None:
            _atomic_write_text(prefix + ".input_state.json", json.dumps(input_state, indent=1) + "\n")
        kept = [p for p in self._all() if p != prefix] + [prefix]
        dropped, kept = kept[:-self.max_to_keep], kept[-self.max_to_keep:]
        lines = [f'model_checkpoint_path: "{os.path.basename(prefix)}"']
        lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in kept]
        _atomic_write_text(_join(self.directory, STATE_FILENAME), "\n".join(lines) + "\n")
        for old in dropped:
            for f in tf.io.gfile.glob(old + ".*"):
                tf.io.gfile.remove(f)
        return prefix


def read_input_state(prefix: str) -> dict | None:
    """The sidecar written by `CheckpointManager.save`, or None if absent."""
    path = prefix + ".input_state.json"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def _check_shape(name, ckpt_shape, var, path, hint=""):
    want = list(var.shape)
    if list(ckpt_shape) != want:
        raise ValueError(
            f"shape mismatch for variable {name!r}: checkpoint {path} has {list(ckpt_shape)}, "
            f"the model expects {want}{hint}")


def _config_hint(name: str) -> str:
    hints = {"word_embeddings": "vocab_size", "output_bias": "vocab_size",
             "position_embeddings": "max_position_embeddings",
             "token_type_embeddings": "type_vocab_size", "intermediate": "intermediate_size"}
    for key, field_name in hints.items():
        if key in name:
            return f" (check {field_name} / hidden_size in bert_config.json)"
    return " (check hidden_size in bert_config.json)"


def restore_all(path: str, variables: dict) -> str:
    """Restores every variable in `variables` (model, slots, global_step) from a checkpoint.

    For resuming: a name the checkpoint lacks is an error (with a hint when the checkpoint holds
    the other optimizer's slots, or no slots at all). Returns the resolved prefix.
    """
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    missing = [n for n in variables if n not in shapes]
    if missing:
        kinds = sorted({m.group(1) for n in shapes for m in [_SLOT_RE.search(n)] if m})
        hint = ""
        if any(_SLOT_RE.search(n) for n in missing):
            hint = (f"; the checkpoint has {kinds[0]}_m/v slots, so it was trained with another "
                    f"--optimizer" if kinds else
                    "; it has no optimizer slots: to start from it use --init_checkpoint, "
                    "not a resume from --output_dir")
        raise ValueError(f"cannot resume from {prefix}: it lacks {len(missing)} variable(s), e.g. "
                         f"{missing[:3]}{hint}")
    for name, var in variables.items():
        _check_shape(name, shapes[name], var, prefix)
    for name, var in variables.items():
        var.assign(reader.get_tensor(name).astype(var.dtype.as_numpy_dtype))
    return prefix


@dataclass
class InitReport:
    """What `init_from_checkpoint` did: names loaded, model names missing from the checkpoint,
    checkpoint names the model does not use (slots, global_step, other heads)."""

    checkpoint: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unused: list = field(default_factory=list)


def init_from_checkpoint(path: str, model_variables: dict,
                         bert_config: BertConfig | None = None) -> InitReport:
    """Loads model variables only from a Google-layout checkpoint (no slots needed) or from a
    transformers folder (config.json + model.safetensors / pytorch_model.bin, see hf.py).

    A shape mismatch raises ValueError naming the variable and both shapes (e.g. a vocab_size that
    disagrees with the checkpoint). Missing and unused names are logged and returned; if none of
    the model's names is in the checkpoint it is not a BERT checkpoint and that is an error.
    `bert_config` (the model's) lets a transformers folder's config.json be checked against it
    key by key, the number of attention heads included; without it the sizes are taken from the
    variables' shapes.
    """
    if hf.is_hf_folder(path):
        return _init_from_hf(path, model_variables, bert_config)
    prefix = resolve_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    report = InitReport(checkpoint=prefix)
    for name, var in model_variables.items():
        if name not in shapes:
            report.missing.append(name)
            continue
        _check_shape(name, shapes[name], var, prefix, _config_hint(name))
        report.loaded.append(name)
    if not report.loaded:
        raise ValueError(f"--init_checkpoint {prefix} holds none of the model's variables "
                         f"(e.g. {list(model_variables)[:2]}); it has {sorted(shapes)[:5]}")
    for name in report.loaded:
        var = model_variables[name]
        var.assign(reader.get_tensor(name).astype(var.dtype.as_numpy_dtype))
    report.unused = sorted(n for n in shapes if n not in model_variables)
    _log_report(report)
    return report


def _log_report(report: InitReport) -> None:
    log.info("init_checkpoint %s: loaded %d variables; %d missing (randomly initialised): %s; "
             "%d unused: %s", report.checkpoint, len(report.loaded), len(report.missing),
             report.missing, len(report.unused), report.unused[:20])


def _sizes_from_variables(shapes: dict[str, list[int]]) -> dict:
    """The config sizes a model's variables show (all but the number of heads)."""
    out = {}
    for key, name, axis in (("vocab_size", "bert/embeddings/word_embeddings", 0),
                            ("hidden_size", "bert/embeddings/word_embeddings", 1),
                            ("max_position_embeddings", "bert/embeddings/position_embeddings", 0),
                            ("type_vocab_size", "bert/embeddings/token_type_embeddings", 0),
                            ("intermediate_size", "bert/encoder/layer_0/intermediate/dense/kernel", 1)):
        if name in shapes:
            out[key] = shapes[name][axis]
    return out


def _init_from_hf(folder: str, model_variables: dict, bert_config: BertConfig | None) -> InitReport:
    shapes = {name: list(var.shape) for name, var in model_variables.items()}
    source = hf.HFFolder(folder, shapes)
    if bert_config is not None:
        expected, what = bert_config.to_dict(), "--bert_config_file"
    else:
        expected, what = _sizes_from_variables(shapes), "the model (--bert_config_file)"
    hf.check_config_agrees(folder, source.config, expected, what)
    found = source.google_shapes()
    report = InitReport(checkpoint=folder)
    for name, var in model_variables.items():
        if name not in found:
            report.missing.append(name)
            continue
        if found[name] != list(var.shape):
            raise ValueError(
                f"shape mismatch for variable {name!r}: {source.where(name)} has {found[name]} "
                f"(in Google's layout), the model expects {list(var.shape)}{_config_hint(name)}")
        report.loaded.append(name)
    if not report.loaded:
        raise ValueError(f"--init_checkpoint {folder} holds none of the model's variables "
                         f"(e.g. {list(model_variables)[:2]}); its files have {source.unused[:5]}")
    for name in report.loaded:
        _assign_from(source, name, model_variables[name])
    source.check_redundant_copies()
    report.unused = source.unused
    heads = [n for n in model_variables if n.startswith("cls/")]
    if heads and all(n in report.missing for n in heads):
        log.warning("init_checkpoint %s holds BertModel weights only (no cls.* heads): the MLM "
                    "and NSP heads start from a fresh initialisation", folder)
    _log_report(report)
    return report


_ASSIGN_BLOCK_BYTES = 8 << 20


def _assign_from(source, name: str, var) -> None:
    """var = the folder's tensor. A large one stored untransposed (the word embeddings: 65 MB in
    BERT-base) is read and assigned in blocks of rows, so the import holds a block, not a whole
    copy plus its tensor conversion. Distributed variables are assigned whole."""
    dtype = var.dtype.as_numpy_dtype
    shape = list(var.shape)
    row_bytes = 4 * int(np.prod(shape[1:], dtype=np.int64)) if shape else 4
    if (not shape or shape[0] * row_bytes <= _ASSIGN_BLOCK_BYTES or not source.by_rows(name)
            or isinstance(var, tf.distribute.DistributedValues)):
        var.assign(source.read(name).astype(dtype, copy=False))
        return
    step = max(1, _ASSIGN_BLOCK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        var[start:stop].assign(source.read(name, (start, stop)).astype(dtype, copy=False))


_GOOGLE_ACTIVATIONS = ("linear", "relu", "gelu", "tanh")  # google-research/bert get_activation


_READERS = ("auto", "numpy", "tensorflow")


def _open_source(checkpoint: str, bert_config: BertConfig, reader: str = "auto"):
    """(description, name -> shape, get(name) -> array, where(name)) of a Google-layout
    checkpoint or a transformers folder, under Google's names. A TF checkpoint is read with
    tf_bundle.py (no TensorFlow) when it is local and `reader` is "auto" or "numpy", with
    `tf.train.load_checkpoint` when it is remote or `reader` is "tensorflow"."""
    if reader not in _READERS:
        raise ValueError(f"reader must be one of {list(_READERS)}, got {reader!r}")
    if hf.is_hf_folder(checkpoint):
        source = hf.HFFolder(checkpoint, google_variable_shapes(bert_config))
        hf.check_config_agrees(checkpoint, source.config, bert_config.to_dict(),
                               "--bert_config_file")
        return checkpoint, source.google_shapes(), source.read, source.where
    prefix = resolve_checkpoint(checkpoint)
    if reader == "tensorflow" or (reader == "auto" and "://" in prefix):
        tf_reader = tf.train.load_checkpoint(prefix)
        return prefix, tf_reader.get_variable_to_shape_map(), tf_reader.get_tensor, lambda name: prefix
    if "://" in prefix:
        raise ValueError(f"checkpoint {prefix}: the numpy reader reads local files only")
    bundle = tf_bundle.BundleReader(prefix)
    return prefix, bundle.get_variable_to_shape_map(), bundle.get_tensor, bundle.where


def export_model(checkpoint: str, bert_config: BertConfig, vocab_file: str | None,
                 export_dir: str, *, format: str = "google", do_lower_case: bool = True,
                 hf_architecture: str = "BertForPreTraining", reader: str = "auto") -> str:
    """Writes the model variables of `checkpoint` (a training --output_dir, a `model.ckpt-N`
    prefix, a release folder, or a transformers folder) as a release.

    format "google": `export_dir/bert_model.ckpt` (model variables only: no slots, no
    global_step), `bert_config.json` and `vocab.txt`, i.e. the layout of Google's release.
    Returns the prefix.
    format "hf": a transformers folder (hf.write_folder): model.safetensors, config.json and the
    tokenizer files; `vocab_file` is required. Written atomically; returns the folder. From a
    local checkpoint or folder this imports no TensorFlow.
    `reader`: how a TF checkpoint is read: "auto" (tf_bundle.py for a local one, TensorFlow for
    gs:// and other remote paths), "numpy" (tf_bundle.py) or "tensorflow"; the tensors are the
    same bit for bit.
    """
    if format not in ("google", "hf"):
        raise ValueError(f"format must be 'google' or 'hf', got {format!r}")
    if format == "hf" and vocab_file is None:
        raise ValueError("--format=hf needs --vocab_file: the folder's tokenizer is made from it")
    where_from, shapes, get, where = _open_source(checkpoint, bert_config, reader)
    wanted = google_variable_shapes(bert_config)
    missing = [n for n in wanted if n not in shapes]
    if missing:
        raise ValueError(f"checkpoint {where_from} lacks {len(missing)} model variable(s) for this "
                         f"bert config, e.g. {missing[:3]}")
    for name, shape in wanted.items():
        if list(shapes[name]) != shape:
            raise ValueError(f"shape mismatch for variable {name!r}: checkpoint {where(name)} has "
                             f"{list(shapes[name])}, the bert config gives {shape}{_config_hint(name)}")
    if format == "hf":
        return hf.write_folder(export_dir, bert_config, wanted, get, vocab_file,
                               do_lower_case=do_lower_case, architecture=hf_architecture)
    if bert_config.hidden_act not in _GOOGLE_ACTIVATIONS:
        log.warning(
            "bert config hidden_act is %r: Google's modeling.py accepts only %s and rejects it "
            "(its 'gelu' is the erf form in the original release, the tanh form in "
            "bert-tensorflow 1.0.4); transformers calls this activation 'gelu_new', which "
            "`wwm-train export --format=hf` writes. wwm-train reads the export as it is.",
            bert_config.hidden_act, "/".join(_GOOGLE_ACTIVATIONS))
    if vocab_file is not None:
        with tf.io.gfile.GFile(vocab_file, "rb") as f:
            vocab = f.read()
        n_lines = len(vocab.split(b"\n")) - (1 if vocab.endswith(b"\n") else 0)
        if n_lines != bert_config.vocab_size:
            raise ValueError(f"vocab file {vocab_file} has {n_lines} entries, bert config "
                             f"vocab_size is {bert_config.vocab_size}")
    tf.io.gfile.makedirs(export_dir)
    tensors = {name: get(name) for name in wanted}
    out = write_checkpoint(_join(export_dir, "bert_model.ckpt"), tensors)
    bert_config.to_json_file(_join(export_dir, "bert_config.json"))
    if vocab_file is not None:
        with tf.io.gfile.GFile(_join(export_dir, "vocab.txt"), "wb") as f:
            f.write(vocab)
    return out


def numpy_values(path: str) -> dict[str, np.ndarray]:
    """All tensors of a checkpoint as numpy arrays (for tests and tools)."""
    reader = tf.train.load_checkpoint(resolve_checkpoint(path))
    return {n: reader.get_tensor(n) for n in sorted(reader.get_variable_to_shape_map())}
