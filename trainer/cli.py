"""`wwm-train`: run_pretraining.py's command line on TF2, plus `wwm-train export`.

    wwm-train --bert_config_file=... --input_file='out/*.tfrecord' --output_dir=ckpt/ \
              --do_train=True --train_batch_size=2560 --num_train_steps=100000 ...
    wwm-train export --checkpoint=ckpt/ --bert_config_file=... --vocab_file=... --export_dir=release/
    wwm-train export --format=hf --checkpoint=ckpt/ --bert_config_file=... --vocab_file=... --export_dir=hf/

Boolean flags take absl's forms, so existing scripts run unchanged: `--do_train`, `--do_train=True`,
`--do_train=false`, `--nodo_train`.
"""

from __future__ import annotations

import argparse
import logging
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


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wwm-train",
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
    p = argparse.ArgumentParser(
        prog="wwm-train export",
        description="Write a release of a checkpoint's model variables (no optimizer slots, no "
                    "global_step). --format=google (default): bert_model.ckpt, bert_config.json "
                    "and vocab.txt, the layout of Google's releases. --format=hf: a transformers "
                    "folder (model.safetensors, config.json, vocab.txt, tokenizer_config.json, "
                    "special_tokens_map.json) that BertForPreTraining/BertForMaskedLM/BertModel/"
                    "AutoModel.from_pretrained and AutoTokenizer.from_pretrained load; written "
                    "without torch, atomically (a temporary folder renamed at the end).")
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


def main(argv=None) -> int:
    """Entry point of `wwm-train`; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .checkpoint import export_model
    from .config import BertConfig
    from .distribute import NoTPUError
    from .training import TrainOptions, run

    try:
        if argv[:1] == ["export"]:
            args = _export_parser().parse_args(argv[1:])
            out = export_model(args.checkpoint, BertConfig.from_json_file(args.bert_config_file),
                               args.vocab_file, args.export_dir, format=args.format,
                               do_lower_case=args.do_lower_case,
                               hf_architecture=args.hf_architecture)
            print(f"exported {out}")
            return 0
        args = vars(_train_parser().parse_args(argv))
        master = args.pop("master")
        if args["tpu_name"] is None and master:
            args["tpu_name"] = master
        opts = TrainOptions(**args)
        result = run(opts)
        if "eval" in result:
            print("***** Eval results *****")
            for key in sorted(result["eval"]):
                print(f"  {key} = {result['eval'][key]}")
        return 0
    except (ValueError, NoTPUError, FloatingPointError) as e:
        print(f"wwm-train: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
