"""`wwm-train`: run_pretraining.py's command line on TF2, plus `wwm-train export`.

    wwm-train --bert_config_file=... --input_file='out/*.tfrecord' --output_dir=ckpt/ \
              --do_train=True --train_batch_size=2560 --num_train_steps=100000 ...
    wwm-train export --checkpoint=ckpt/ --bert_config_file=... --vocab_file=... --export_dir=release/
    wwm-train export --format=hf --checkpoint=ckpt/ --bert_config_file=... --vocab_file=... --export_dir=hf/

Boolean flags take absl's forms, so existing scripts run unchanged: `--do_train`, `--do_train=True`,
`--do_train=false`, `--nodo_train`.

The command line is parsed, and every numeric flag checked against its range (`_RANGES`), before
TensorFlow is imported: `--help` and a bad flag answer at once, and without TensorFlow installed
the error names the `train` extra. TensorFlow's start-up log lines (absl, oneDNN, cpu_feature_guard,
tf.data warnings) are hidden unless `--verbose` (TF_CPP_MIN_LOG_LEVEL, when not set by the user).
`export --format=hf` from local files does not import TensorFlow at all (tf_bundle.py reads the
checkpoint). Exit status as `wwm-fast`: 0 done, 2 an error (one line on stderr; `--verbose` adds the
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _add_bool(parser, name, default, help_text):
    parser.add_argument(f"--{name}", nargs="?", const=True, default=default, type=_bool,
                        metavar="BOOL", help=help_text)
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


class _Parser(argparse.ArgumentParser):
    """Errors in one line (`prog: error: ...`, exit status 2, as argparse's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.HelpFormatter):
    """Each help line ends with its default, once: not for a required flag, a None default (chosen
    later, the help text says how) or a help text that already gives it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and not action.required and action.default is not None
                and action.default is not argparse.SUPPRESS and "default" not in text.lower()
                and not isinstance(action, argparse._HelpAction)):
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


def _train_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="wwm-train", formatter_class=_Formatter,
        description="BERT / whole-word-masking pre-training on TF2 (TPU, GPU, CPU) with "
                    "Google-layout checkpoints. `wwm-train export --help` for the export command.")
    g = p.add_argument_group("run_pretraining.py flags")
    g.add_argument("--bert_config_file", required=True, help="bert_config.json of the model")
    g.add_argument("--input_file", help="comma-separated TFRecord globs (local or gs://)")
    g.add_argument("--output_dir", required=True, help="checkpoints, summaries, eval results")
    g.add_argument("--init_checkpoint",
                   help="checkpoint to start from (model variables only): a Google-layout checkpoint "
                        "or a transformers BERT folder (config.json + model.safetensors / "
                        "pytorch_model.bin)")
    g.add_argument("--max_seq_length", type=int, default=128)
    g.add_argument("--max_predictions_per_seq", type=int, default=20)
    _add_bool(g, "do_train", False, "train")
    _add_bool(g, "do_eval", False, "evaluate (after training when both are set)")
    g.add_argument("--train_batch_size", type=int, default=32, help="global batch per optimizer step")
    g.add_argument("--eval_batch_size", type=int, default=8)
    g.add_argument("--learning_rate", type=float, default=5e-5)
    g.add_argument("--num_train_steps", type=int, default=100000)
    g.add_argument("--num_warmup_steps", type=int, default=10000)
    g.add_argument("--save_checkpoints_steps", type=int, default=1000)
    g.add_argument("--iterations_per_loop", type=int, default=1000,
                   help="steps per host loop (one tf.function call / TPU round trip)")
    g.add_argument("--max_eval_steps", type=int, default=100)
    _add_bool(g, "use_tpu", False, "train on a TPU (TPUStrategy)")
    g.add_argument("--tpu_name", help="TPU name, grpc://address, or 'local' on a TPU VM")
    g.add_argument("--tpu_zone")
    g.add_argument("--gcp_project")
    g.add_argument("--master", help="TPU grpc address (TF1 name; used when --tpu_name is unset)")
    g.add_argument("--num_tpu_cores", type=int, default=None,
                   help="if set, checked against the cores the TPU reports")
    g.add_argument("--tpu_connect_timeout", type=float, default=600.0, metavar="SECONDS",
                   help="give up (exit with an error) if connecting to and initialising the TPU "
                        "takes longer; 0: no limit")

    e = p.add_argument_group("optimizer")
    e.add_argument("--optimizer", choices=["lamb", "adamw"], default="lamb",
                   help="lamb (BERT-wwm) or adamw (Google's AdamWeightDecay, RoBERTa-wwm-ext)")
    e.add_argument("--lamb_preset", choices=["ymcui", "tfa", "nvidia", "keras"], default="ymcui",
                   help="LAMB variant whose defaults the switches below override")
    _add_bool(e, "bias_correction", None, "Adam bias correction (ymcui/BERT-wwm: false)")
    e.add_argument("--weight_decay_rate", type=float, default=None, help="default 0.01")
    e.add_argument("--epsilon", type=float, default=None, help="default 1e-6")
    e.add_argument("--beta_1", type=float, default=0.9)
    e.add_argument("--beta_2", type=float, default=0.999)
    e.add_argument("--exclude_from_weight_decay", default=None,
                   help="comma-separated regexes (default LayerNorm,layer_norm,bias)")
    e.add_argument("--exclude_from_layer_adaptation", default=None,
                   help="comma-separated regexes; '' = trust ratio on every variable (ymcui default)")
    e.add_argument("--lr_decay_power", type=float, default=1.0,
                   help="polynomial decay power after warmup (NVIDIA LAMB recipe: 0.5)")
    e.add_argument("--clip_norm", type=float, default=1.0, help="global-norm gradient clipping")
    e.add_argument("--gradient_reduction", choices=["mean_then_clip", "clip_then_sum"],
                   default="mean_then_clip",
                   help="mean_then_clip: average the gradients of all replicas and micro-batches, "
                        "then clip; clip_then_sum: Google's run_pretraining.py on TPU (each "
                        "replica / micro-batch clips its own gradient, the clipped gradients are "
                        "summed), the BERT-wwm recipe")
    e.add_argument("--gradient_accumulation_steps", type=int, default=1,
                   help="micro-batches per optimizer step (--train_batch_size stays the global batch)")

    x = p.add_argument_group("model, input and hardware")
    _add_bool(x, "use_nsp", True, "next-sentence prediction loss (false for RoBERTa-wwm-ext)")
    x.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="compute dtype; variables, slots and losses stay float32. bfloat16: TPU, "
                        "A100/H100 and newer GPUs; float16 (with dynamic loss scaling): V100, T4")
    x.add_argument("--loss_scale_initial", type=float, default=2.0 ** 15,
                   help="float16: initial loss scale (halved on every step with Inf/NaN gradients)")
    x.add_argument("--loss_scale_growth_steps", type=int, default=2000,
                   help="float16: the loss scale doubles after this many finite steps in a row")
    x.add_argument("--strategy", choices=["auto", "tpu", "mirrored", "multi_worker", "one_device"],
                   default="auto")
    _add_bool(x, "jit_compile", False, "XLA-compile the train step on CPU/GPU (TPU always is)")
    x.add_argument("--seed", type=int, default=12345, help="initialisation, input order, dropout")
    x.add_argument("--keep_checkpoint_max", type=int, default=5)
    x.add_argument("--shuffle_buffer", type=int, default=100, help="record shuffle buffer per pipeline")
    return p


def _export_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="wwm-train export", formatter_class=_Formatter,
        description="Write a release of a checkpoint's model variables (no optimizer slots, no "
                    "global_step). --format=google (default): bert_model.ckpt, bert_config.json "
                    "and vocab.txt, the layout of Google's releases. --format=hf: a transformers "
                    "folder (model.safetensors, config.json, vocab.txt, tokenizer_config.json, "
                    "special_tokens_map.json) that BertForPreTraining/BertForMaskedLM/BertModel/"
                    "AutoModel.from_pretrained and AutoTokenizer.from_pretrained load; written "
                    "without torch, atomically (a temporary folder renamed at the end), and from a "
                    "local checkpoint without TensorFlow.")
    p.add_argument("--checkpoint", required=True,
                   help="a training --output_dir (its latest checkpoint), a model.ckpt-N prefix, a "
                        "release folder (bert_model.ckpt), or a transformers folder")
    p.add_argument("--bert_config_file", required=True)
    p.add_argument("--vocab_file", help="copied as vocab.txt (its size is checked against the "
                                        "config); required with --format=hf")
    p.add_argument("--export_dir", required=True,
                   help="--format=hf: a local folder that does not exist yet (or is empty)")
    p.add_argument("--format", choices=["google", "hf"], default="google",
                   help="google: TF1 bert_model.ckpt (default); hf: transformers folder")
    _add_bool(p, "do_lower_case", True,
              "--format=hf: the tokenizer lower-cases and strips accents (true for the Chinese "
              "BERT vocab, as in pre-training)")
    p.add_argument("--hf_architecture", choices=["BertForPreTraining", "BertForMaskedLM", "BertModel"],
                   default="BertForPreTraining",
                   help="--format=hf: which weights to write. BertForPreTraining: all (encoder, "
                        "pooler, MLM and NSP heads); BertForMaskedLM: no pooler or NSP head; "
                        "BertModel: the encoder and pooler. Loading the folder into that class "
                        "reports no unexpected weights")
    return p


# Ranges of the numeric flags, checked after parsing and before TensorFlow is imported:
# name -> (low, high, low excluded, high excluded); None (unset: a preset's value) is not checked.
# The upper bounds are policy: a value past them is a typo or would allocate gigabytes.
# max_seq_length 8192 as `wwm-fast create` (wwm_fast/_limits.py); batch sizes 2**20 sequences
# (LAMB's largest published batch is 65,536); steps 10**9; shuffle_buffer 10**6 records (~5 GB at
# 512 tokens); seeds [0, 2**63 - 1] (int64 seeds). Flags absent from this build are skipped.
_BIG = 10 ** 9
_RANGES = {
    "max_seq_length": (5, 8192, False, False),
    "max_predictions_per_seq": (1, 8192, False, False),
    "train_batch_size": (1, 2 ** 20, False, False),
    "eval_batch_size": (1, 2 ** 20, False, False),
    "learning_rate": (0.0, 10.0, True, False),
    "num_train_steps": (1, _BIG, False, False),
    "num_warmup_steps": (0, _BIG, False, False),
    "save_checkpoints_steps": (1, _BIG, False, False),
    "iterations_per_loop": (1, _BIG, False, False),
    "max_eval_steps": (1, _BIG, False, False),
    "num_tpu_cores": (1, 65536, False, False),
    "tpu_connect_timeout": (0.0, 7 * 86400.0, False, False),
    "weight_decay_rate": (0.0, 1.0, False, False),
    "epsilon": (0.0, 1.0, True, True),
    "beta_1": (0.0, 1.0, False, True),
    "beta_2": (0.0, 1.0, False, True),
    "lr_decay_power": (0.0, 100.0, False, False),
    "clip_norm": (0.0, 1e6, True, False),
    "gradient_accumulation_steps": (1, 65536, False, False),
    "loss_scale_initial": (0.0, 3e38, True, True),  # float32's range
    "loss_scale_growth_steps": (1, _BIG, False, False),
    "seed": (0, 2 ** 63 - 1, False, False),
    "keep_checkpoint_max": (1, 10 ** 6, False, False),
    "shuffle_buffer": (0, 10 ** 6, False, False),
}


def _check_ranges(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error (one line, exit status 2) for the first numeric flag out of its range."""
    for name, (lo, hi, lo_open, hi_open) in _RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        ok = (not isinstance(value, float) or math.isfinite(value)) and (
            (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi))
        if not ok:
            noun = "a number" if isinstance(lo, float) else "an integer"
            rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}" \
                if isinstance(lo, float) else f"[{lo}, {hi}]"
            parser.error(f"argument --{name}: must be {noun} in {rng}, got {value}")


# Help of the flags defined above without one (kept here so that the definitions stay as they
# are): every flag's help line then explains it and ends with its default.
_HELP = {
    "max_seq_length": "tokens per sequence: the --max_seq_length the records were created with",
    "max_predictions_per_seq": "masked positions per sequence: the records' value",
    "eval_batch_size": "global batch of --do_eval",
    "learning_rate": "peak learning rate, reached at the end of the warmup",
    "num_train_steps": "optimizer steps in all (a resumed run continues up to this step)",
    "num_warmup_steps": "steps of linear warmup from 0 to --learning_rate",
    "save_checkpoints_steps": "optimizer steps between checkpoints",
    "max_eval_steps": "batches --do_eval reads",
    "tpu_zone": "GCE zone of --tpu_name (default: from the environment)",
    "gcp_project": "GCP project of --tpu_name (default: from the environment)",
    "beta_1": "decay of the first-moment (mean) estimate",
    "beta_2": "decay of the second-moment (variance) estimate",
    "strategy": "auto: TPU with --use_tpu, MultiWorkerMirrored when TF_CONFIG lists several "
                "workers, Mirrored with several GPUs, else one device",
    "keep_checkpoint_max": "most recent checkpoints kept (older ones are deleted)",
    "bert_config_file": "bert_config.json of the model",
}


def _finish_parser(parser: argparse.ArgumentParser) -> None:
    """The missing help texts (``_HELP``) and ``--verbose``, on either parser."""
    for action in parser._actions:
        if action.help is None and action.dest in _HELP:
            action.help = _HELP[action.dest]
    _add_bool(parser.add_argument_group("output"), "verbose", False,
              "show TensorFlow's start-up log lines (absl, oneDNN, CPU features, tf.data "
              "warnings) and the traceback of an error")


def _import_tensorflow(verbose: bool):
    """``import tensorflow``, quietly unless ``verbose``.

    TF_CPP_MIN_LOG_LEVEL=2 (unless the user set it) hides TensorFlow's C++ INFO and WARNING lines
    (cpu_feature_guard, tf.data). The oneDNN line and absl's "All log messages before
    absl::InitializeLog()" are written during the import whatever that level: the import's stderr
    (file descriptor 2) goes to a temporary file, shown only if the import fails.
    """
    if verbose:
        import tensorflow
        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow


def _quiet_tensorflow_python(verbose: bool) -> None:
    """After the import: TensorFlow's and absl's Python loggers at ERROR unless ``verbose``."""
    if verbose:
        return
    for name in ("tensorflow", "absl", "h5py", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _check_output_dir(path: str) -> None:
    """A local output folder that cannot be created or written fails before any training."""
    if not path or "://" in path:  # gs://, hdfs://: TensorFlow's file systems report themselves
        return
    import tempfile

    folder = os.path.abspath(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".wwm-train-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write to --output_dir {folder!r}: {e.strerror or e}") from None


def _error_line(e: BaseException, tf_error: bool = False) -> str:
    """One line for an error: OSErrors without their errno prefix; TensorFlow's OpErrors
    (``tf_error``) by the first line of their message (the rest is the graph's context); any
    other message with its lines joined."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename!r}" if e.filename is not None else e.strerror
    text = str(getattr(e, "message", "") or e) if tf_error else str(e)
    if tf_error:
        text = text.split("\n")[0]
    return " ".join(text.split()) or type(e).__name__


def main(argv=None) -> int:
    """Entry point of `wwm-train`; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    export = argv[:1] == ["export"]
    parser = _export_parser() if export else _train_parser()
    _finish_parser(parser)
    args = parser.parse_args(argv[1:] if export else argv)
    verbose = args.verbose
    del args.verbose
    _check_ranges(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # an export to a transformers folder from local files needs no TensorFlow (tf_bundle.py
    # reads the checkpoint): not importing it saves seconds and hundreds of MB
    tensorflow = None
    if not (export and args.format == "hf"
            and "://" not in args.checkpoint + args.bert_config_file):
        try:
            tensorflow = _import_tensorflow(verbose)
        except ImportError as e:
            print(f"wwm-train: error: TensorFlow is not installed ({e}); install the trainer "
                  f"with: pip install 'wwm-fast[train]'", file=sys.stderr)
            return 2
        _quiet_tensorflow_python(verbose)
    from .config import BertConfig

    errors = (ValueError, FloatingPointError, OSError)
    if tensorflow is not None:
        from .distribute import NoTPUError

        errors += (NoTPUError, tensorflow.errors.OpError)
    try:
        if export:
            from .checkpoint import export_model

            out = export_model(args.checkpoint, BertConfig.from_json_file(args.bert_config_file),
                               args.vocab_file, args.export_dir, format=args.format,
                               do_lower_case=args.do_lower_case,
                               hf_architecture=args.hf_architecture)
            print(f"exported {out}")
            return 0
        from .training import TrainOptions, run

        args = vars(args)
        master = args.pop("master")
        if args["tpu_name"] is None and master:
            args["tpu_name"] = master
        opts = TrainOptions(**args)
        _check_output_dir(opts.output_dir)
        result = run(opts)
        if "eval" in result:
            print("***** Eval results *****")
            for key in sorted(result["eval"]):
                print(f"  {key} = {result['eval'][key]}")
        return 0
    except KeyboardInterrupt:
        print("wwm-train: interrupted", file=sys.stderr)
        return 130
    except errors as e:
        if verbose:
            import traceback

            traceback.print_exc()
        tf_error = tensorflow is not None and isinstance(e, tensorflow.errors.OpError)
        line = _error_line(e, tf_error=tf_error)
        print(f"wwm-train: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
