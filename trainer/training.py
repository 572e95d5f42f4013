"""The pre-training loop: run_pretraining.py's behaviour on TF2 custom loops and tf.distribute.

One optimizer step = `gradient_accumulation_steps` micro-batches per replica. Each micro-batch
normalises its own loss (as each TPU core does). `--gradient_reduction` says how their gradients
become the one the optimizer sees:

* `mean_then_clip` (default): averaged over micro-batches and replicas, then clipped to global
  norm `--clip_norm` (1.0);
* `clip_then_sum` (Google's run_pretraining.py on TPU): each micro-batch's gradient is clipped on
  its own, then the clipped gradients are summed over micro-batches and replicas, unscaled
  (CrossShardOptimizer sums; its 1/num_shards lives in compute_gradients, which BERT never calls).
  A micro-batch plays the part of a TPU core, so R replicas x K micro-batches reproduce an
  R*K-core TPU run.

The trust ratio is computed on the reduced gradient. `--train_batch_size` is the global batch of
one optimizer step. A host loop runs `--iterations_per_loop` steps inside one tf.function (one TPU
round trip). `--precision float16` adds dynamic loss scaling (optimization.DynamicLossScale).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from typing import Callable

import tensorflow as tf

from . import checkpoint as ckpt
from .config import BertConfig
from .distribute import is_chief, resolve_strategy
from .input_pipeline import (check_record_lengths, expand_input_files, make_dataset,
                             parse_error_message)
from .modeling import RNG_ALG, BertPretrainingModel, pretraining_loss_and_metrics
from .optimization import AdamWeightDecay, DynamicLossScale, Lamb, WarmupPolynomialDecay

log = logging.getLogger("wwm_trainer")

_METRICS = ("loss", "masked_lm_loss", "masked_lm_accuracy", "next_sentence_loss",
            "next_sentence_accuracy")
GRADIENT_REDUCTIONS = ("mean_then_clip", "clip_then_sum")
PRECISIONS = ("float32", "bfloat16", "float16")
_EVAL_SUMS = ("mlm_weight_sum", "mlm_loss_sum", "mlm_correct_sum", "nsp_count", "nsp_loss_sum",
              "nsp_correct_sum", "loss")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN/Inf; training stopped and nothing was saved."""


def _scalar_metadata() -> bytes:
    """TensorBoard's scalar-plugin metadata, so summaries need no `tensorboard` package to write."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"
    meta.data_class = summary_pb2.DATA_CLASS_SCALAR
    return meta.SerializeToString()


def _write_scalars(writer, step: int, scalars: dict) -> None:
    """Writes float scalars as TensorBoard scalar summaries at `step` (what tf.summary.scalar does)."""
    metadata = _scalar_metadata()
    with writer.as_default(step=step):
        for tag, value in scalars.items():
            tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=metadata)
    writer.flush()


@dataclasses.dataclass
class TrainOptions:
    """Everything `wwm-train` takes; field names are run_pretraining.py's flag names.

    LAMB switches left at None take the value of `lamb_preset` ("ymcui" by default, the BERT-wwm
    recipe); for `optimizer="adamw"` they take Google's AdamWeightDecay values.
    """

    bert_config_file: str
    input_file: str | None = None
    output_dir: str | None = None
    init_checkpoint: str | None = None
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    do_train: bool = False
    do_eval: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    save_checkpoints_steps: int = 1000
    iterations_per_loop: int = 1000
    max_eval_steps: int = 100
    use_tpu: bool = False
    tpu_name: str | None = None
    tpu_zone: str | None = None
    gcp_project: str | None = None
    num_tpu_cores: int | None = None
    tpu_connect_timeout: float = 600.0
    # extras
    optimizer: str = "lamb"
    lamb_preset: str = "ymcui"
    bias_correction: bool | None = None
    weight_decay_rate: float | None = None
    epsilon: float | None = None
    beta_1: float = 0.9
    beta_2: float = 0.999
    exclude_from_weight_decay: str | None = None
    exclude_from_layer_adaptation: str | None = None
    lr_decay_power: float = 1.0
    clip_norm: float = 1.0
    gradient_reduction: str = "mean_then_clip"
    gradient_accumulation_steps: int = 1
    use_nsp: bool = True
    precision: str = "float32"
    loss_scale_initial: float = 2.0 ** 15
    loss_scale_growth_steps: int = 2000
    strategy: str = "auto"
    jit_compile: bool = False
    seed: int = 12345
    keep_checkpoint_max: int = 5
    shuffle_buffer: int = 100
    log_every_loop: bool = True

    def validate(self) -> None:
        positive = ("max_seq_length", "max_predictions_per_seq", "train_batch_size", "eval_batch_size",
                    "num_train_steps", "save_checkpoints_steps", "iterations_per_loop",
                    "max_eval_steps", "gradient_accumulation_steps", "keep_checkpoint_max")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"--{name} must be a positive integer, got {value!r}")
        if self.num_warmup_steps < 0 or self.num_warmup_steps > self.num_train_steps:
            raise ValueError(f"--num_warmup_steps must be in [0, --num_train_steps="
                             f"{self.num_train_steps}], got {self.num_warmup_steps!r}")
        if self.optimizer not in ("lamb", "adamw"):
            raise ValueError(f"--optimizer must be one of ['lamb', 'adamw'], got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "float16" and (self.use_tpu or self.strategy == "tpu"):
            raise ValueError("--precision=float16 is for GPUs without bfloat16 (V100, T4); a TPU "
                             "computes in bfloat16: use --precision=bfloat16")
        if self.gradient_reduction not in GRADIENT_REDUCTIONS:
            raise ValueError(f"--gradient_reduction must be one of {list(GRADIENT_REDUCTIONS)}, "
                             f"got {self.gradient_reduction!r}")
        if not (self.loss_scale_initial > 0 and self.loss_scale_initial < 3e38):
            raise ValueError(f"--loss_scale_initial must be in (0, 3e38), got {self.loss_scale_initial!r}")
        growth = self.loss_scale_growth_steps
        if isinstance(growth, bool) or not isinstance(growth, int) or growth < 1:
            raise ValueError(f"--loss_scale_growth_steps must be a positive integer, got "
                             f"{self.loss_scale_growth_steps!r}")
        if not self.tpu_connect_timeout >= 0:
            raise ValueError(f"--tpu_connect_timeout must be >= 0 seconds (0: no limit), got "
                             f"{self.tpu_connect_timeout!r}")
        if self.max_predictions_per_seq > self.max_seq_length:
            raise ValueError(f"--max_predictions_per_seq ({self.max_predictions_per_seq}) cannot exceed "
                             f"--max_seq_length ({self.max_seq_length})")
        if (self.do_train or self.do_eval) and not self.input_file:
            raise ValueError("--input_file is required with --do_train or --do_eval")
        if not self.output_dir:
            raise ValueError("--output_dir is required")
        if self.train_batch_size % self.gradient_accumulation_steps:
            raise ValueError(f"--train_batch_size ({self.train_batch_size}) must be a multiple of "
                             f"--gradient_accumulation_steps ({self.gradient_accumulation_steps})")


@dataclasses.dataclass
class TrainResult:
    """What `Trainer.train` did: final step, per-step losses of this run, last loop's mean metrics,
    checkpoints written."""

    global_step: int
    losses: list
    metrics: dict
    checkpoints: list


def build_optimizer(opts: TrainOptions):
    """The optimizer `opts` describe, with Google's warmup + polynomial-decay schedule."""
    schedule = WarmupPolynomialDecay(opts.learning_rate, opts.num_train_steps, opts.num_warmup_steps,
                                     power=opts.lr_decay_power)
    overrides = {k: getattr(opts, k) for k in ("bias_correction", "weight_decay_rate", "epsilon",
                                                "exclude_from_weight_decay") if getattr(opts, k) is not None}
    common = dict(beta_1=opts.beta_1, beta_2=opts.beta_2, clip_norm=opts.clip_norm)
    if opts.optimizer == "adamw":
        return AdamWeightDecay(schedule, **common, **overrides)
    if opts.exclude_from_layer_adaptation is not None:
        overrides["exclude_from_layer_adaptation"] = opts.exclude_from_layer_adaptation
    return Lamb.from_preset(opts.lamb_preset, schedule, **common, **overrides)


def _fingerprint(files: list[str]) -> str:
    return hashlib.sha1("\n".join(files).encode()).hexdigest()[:16]


class Trainer:
    """Builds strategy, model and optimizer for `opts`; `train()` and `evaluate()` run them.

    `strategy` overrides `opts.strategy` (tests pass a MirroredStrategy over logical CPUs).
    """

    def __init__(self, opts: TrainOptions, strategy: tf.distribute.Strategy | None = None):
        opts.validate()
        self.opts = opts
        self.config = BertConfig.from_json_file(opts.bert_config_file)
        if opts.max_seq_length > self.config.max_position_embeddings:
            raise ValueError(f"--max_seq_length ({opts.max_seq_length}) exceeds max_position_embeddings "
                             f"({self.config.max_position_embeddings}) of {opts.bert_config_file}")
        self.strategy = strategy or resolve_strategy(
            opts.strategy, use_tpu=opts.use_tpu, tpu_name=opts.tpu_name, tpu_zone=opts.tpu_zone,
            gcp_project=opts.gcp_project, num_tpu_cores=opts.num_tpu_cores,
            tpu_connect_timeout=opts.tpu_connect_timeout)
        if opts.precision == "float16" and isinstance(self.strategy, tf.distribute.TPUStrategy):
            raise ValueError("--precision=float16 does not run on a TPU: use --precision=bfloat16")
        self.is_chief = is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        per_replica = opts.train_batch_size // replicas
        if opts.train_batch_size % replicas or per_replica % opts.gradient_accumulation_steps:
            raise ValueError(
                f"--train_batch_size ({opts.train_batch_size}) must be a multiple of replicas "
                f"({replicas}) x --gradient_accumulation_steps ({opts.gradient_accumulation_steps})")
        if opts.do_eval and opts.eval_batch_size % replicas:
            raise ValueError(f"--eval_batch_size ({opts.eval_batch_size}) must be a multiple of the "
                             f"number of replicas ({replicas})")
        compute_dtype = tf.as_dtype(opts.precision)
        with self.strategy.scope():
            self.model = BertPretrainingModel(self.config, compute_dtype=compute_dtype, seed=opts.seed)
            self.optimizer = build_optimizer(opts)
            all_vars = self.model.variables_by_name
            self.trainable_names = self.model.trainable_names(opts.use_nsp)
            self.trainable = {n: all_vars[n] for n in self.trainable_names}
            self.optimizer.build(self.trainable)
            self.loss_scale = None
            if opts.precision == "float16":
                self.loss_scale = DynamicLossScale(opts.loss_scale_initial, opts.loss_scale_growth_steps)
                self.loss_scale.build()
        self.manager = ckpt.CheckpointManager(opts.output_dir, max_to_keep=opts.keep_checkpoint_max)
        self._files = None
        self._train_loop_fn = None
        self._eval_loop_fn = None
        self._resume_state = None  # set by restore_or_initialize
        self.examples_consumed = 0

    # ---------------------------------------------------------------- state
    def checkpoint_tensors(self) -> dict:
        """Name -> variable of everything a resume needs: model, slots, global_step, and with
        float16 the loss scale and its counters."""
        tensors = {**self.model.variables_by_name, **self.optimizer.slot_variables()}
        if self.loss_scale is not None:
            tensors.update(self.loss_scale.variables())
        return tensors

    @property
    def global_step(self) -> int:
        return int(self.optimizer.global_step.numpy())

    def restore_or_initialize(self, model_only: bool = False) -> str:
        """Resume from the latest checkpoint in --output_dir if there is one (everything, data
        position included), else load --init_checkpoint (model variables only), else keep the
        random initialisation. `model_only` (eval without training) restores the model and
        global_step but not the slots, so any optimizer's checkpoint evaluates. Returns what
        happened, for the log."""
        latest = self.manager.latest
        if latest is not None:
            wanted = self.checkpoint_tensors()
            if model_only:
                wanted = {**self.model.variables_by_name,
                          "global_step": self.optimizer.global_step}
            if self.loss_scale is not None and not model_only:
                # a checkpoint of a float32/bfloat16 run has no loss scale: start from the initial one
                present = ckpt.list_checkpoint(latest)
                absent = [n for n in self.loss_scale.variables() if n not in present]
                if absent:
                    log.info("%s has no float16 loss scale (%s): starting from --loss_scale_initial=%g",
                             latest, ", ".join(absent), self.opts.loss_scale_initial)
                    wanted = {n: v for n, v in wanted.items() if n not in absent}
            ckpt.restore_all(latest, wanted)
            if model_only:  # slots not restored: a later train() must restore again
                return f"restored model variables of {latest} (step {self.global_step})"
            state = ckpt.read_input_state(latest) or {}
            self.examples_consumed = int(state.get("examples_consumed",
                                                   self.global_step * self.opts.train_batch_size))
            self._resume_state = state
            msg = f"resumed from {latest} at step {self.global_step}"
            if self.opts.init_checkpoint:
                msg += f" (--init_checkpoint {self.opts.init_checkpoint} ignored: resuming)"
            return msg
        self._resume_state = {}
        if self.opts.init_checkpoint:
            report = ckpt.init_from_checkpoint(self.opts.init_checkpoint, self.model.variables_by_name,
                                               bert_config=self.model.config)
            self.init_report = report
            return (f"initialised {len(report.loaded)} variables from {report.checkpoint}; "
                    f"missing {report.missing}; unused {len(report.unused)}")
        return "random initialisation"

    # ---------------------------------------------------------------- input
    def _input_files(self):
        if self._files is None:
            self._files = expand_input_files(self.opts.input_file)
            check_record_lengths(self._files, self.opts.max_seq_length,
                                 self.opts.max_predictions_per_seq, self.opts.use_nsp)
        return self._files

    def _train_skip(self, num_pipelines: int) -> int:
        state = self._resume_state or {}
        files = self._input_files()
        if state and (state.get("input_fingerprint") != _fingerprint(files)
                      or state.get("seed") != self.opts.seed):
            log.warning("input files or seed differ from the checkpoint's run: the input starts "
                        "from the beginning, not where the previous run stopped")
            return 0
        if state and state.get("num_input_pipelines") != num_pipelines:
            log.warning("number of input pipelines changed (%s -> %d): data position is approximate",
                        state.get("num_input_pipelines"), num_pipelines)
        return self.examples_consumed // num_pipelines

    def _distributed_dataset(self, is_training: bool):
        opts = self.opts
        files = self._input_files()
        global_batch = opts.train_batch_size if is_training else opts.eval_batch_size
        holder = {}

        def dataset_fn(ctx: tf.distribute.InputContext):
            skip = self._train_skip(ctx.num_input_pipelines) if is_training else 0
            holder["pipelines"] = ctx.num_input_pipelines
            if skip:
                log.info("fast-forwarding input pipeline %d by %d examples", ctx.input_pipeline_id, skip)
            return make_dataset(
                files, batch_size=ctx.get_per_replica_batch_size(global_batch),
                max_seq_length=opts.max_seq_length, max_predictions_per_seq=opts.max_predictions_per_seq,
                is_training=is_training, use_nsp=opts.use_nsp, seed=opts.seed,
                num_input_pipelines=ctx.num_input_pipelines, input_pipeline_id=ctx.input_pipeline_id,
                skip_examples=skip, shuffle_buffer=opts.shuffle_buffer)

        ds = self.strategy.distribute_datasets_from_function(dataset_fn)
        self._num_pipelines = holder.get("pipelines", 1)
        return ds

    # ---------------------------------------------------------------- steps
    def _dropout_seed(self, shard):
        base = tf.constant([self.opts.seed, 0], tf.int64)
        s = tf.random.experimental.stateless_fold_in(base, self.optimizer.global_step.read_value(),
                                                     alg=RNG_ALG)
        return tf.random.experimental.stateless_fold_in(s, tf.cast(shard, tf.int64), alg=RNG_ALG)

    def _grads_and_metrics(self, features, shard):
        """Gradients of one micro-batch's loss (normalised over that micro-batch) and its metrics.
        With float16 the loss is multiplied by the loss scale and the gradients divided by it;
        with clip_then_sum the gradients come back clipped and `global_norm` is their norm before."""
        variables = [self.trainable[n] for n in self.trainable_names]
        with tf.GradientTape() as tape:
            out = self.model(features["input_ids"], features["input_mask"], features["segment_ids"],
                             features["masked_lm_positions"], training=True,
                             dropout_seed=self._dropout_seed(shard))
            metrics = pretraining_loss_and_metrics(out, features, use_nsp=self.opts.use_nsp)
            loss = metrics["loss"]
            if self.loss_scale is not None:
                scale = self.loss_scale.scale.read_value()
                loss = loss * scale
        grads = tape.gradient(loss, variables)
        metrics = {k: metrics[k] for k in _METRICS}
        if self.loss_scale is not None or self.opts.gradient_reduction == "clip_then_sum":
            # dense: the norm of an IndexedSlices (the gather of the token-type table) would be
            # taken over its un-summed rows; on a TPU, Google's one-hot embeddings give dense ones
            grads = [tf.convert_to_tensor(g) for g in grads]
        if self.loss_scale is not None:
            grads = [g / scale for g in grads]
        if self.opts.gradient_reduction == "clip_then_sum":
            if self.optimizer.clip_norm is not None:
                grads, metrics["global_norm"] = tf.clip_by_global_norm(grads, self.optimizer.clip_norm)
            else:
                metrics["global_norm"] = tf.linalg.global_norm(grads)
        return grads, metrics

    def _replica_train_step(self, features):
        """One optimizer step on this replica's batch (plain graph code: no autograph)."""
        k = self.opts.gradient_accumulation_steps
        clip_then_sum = self.opts.gradient_reduction == "clip_then_sum"
        keys = _METRICS + ("global_norm",) if clip_then_sum else _METRICS
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group, tf.int64)
        if k == 1:
            grads, metrics = self._grads_fn(features, replica)
        else:
            micro = {n: tf.reshape(x, tf.concat([[k, -1], tf.shape(x)[1:]], 0))
                     for n, x in features.items()}

            def body(i, grads, metrics):
                g, m = self._grads_fn({n: x[i] for n, x in micro.items()},
                                      replica * k + tf.cast(i, tf.int64))
                return (i + 1, [a + b for a, b in zip(grads, g)],
                        {key: metrics[key] + m[key] for key in keys})

            zeros = ([tf.zeros_like(v) for v in self.trainable.values()],
                     {m: tf.constant(0.0) for m in keys})
            _, grads, metrics = tf.while_loop(lambda i, *_: i < k, body, (tf.constant(0), *zeros))
            if not clip_then_sum:  # clip_then_sum sums the clipped micro-batch gradients
                grads = [g / k for g in grads]
            metrics = {key: v / k for key, v in metrics.items()}
        if self.strategy.num_replicas_in_sync > 1:
            op = tf.distribute.ReduceOp.SUM if clip_then_sum else tf.distribute.ReduceOp.MEAN
            grads = ctx.all_reduce(op, grads)
        norm = self.optimizer.apply_gradients(list(zip(grads, self.trainable_names)), self.trainable,
                                              clip=not clip_then_sum, loss_scale=self.loss_scale)
        if not clip_then_sum:
            metrics["global_norm"] = norm
        if self.loss_scale is not None:
            # a skipped step (Inf/NaN gradients) counts 0 here; train() averages over applied steps
            applied = tf.math.is_finite(norm)
            metrics["global_norm"] = tf.where(applied, metrics["global_norm"], 0.0)
        return metrics

    def _build_train_loop(self):
        # --jit_compile on CPU/GPU: with one replica the whole step (forward, backward, clipping,
        # update) is one XLA cluster; with several, forward + backward are (the all-reduce and the
        # cross-replica update stay outside). On TPU everything is XLA-compiled anyway.
        jit = self.opts.jit_compile and not isinstance(self.strategy, tf.distribute.TPUStrategy)
        whole_step = jit and self.strategy.num_replicas_in_sync == 1
        self._grads_fn = (tf.function(self._grads_and_metrics, jit_compile=True, autograph=False)
                          if jit and not whole_step else self._grads_and_metrics)
        replica_step = (tf.function(self._replica_train_step, jit_compile=True, autograph=False)
                        if whole_step else self._replica_train_step)
        strategy = self.strategy
        keys = _METRICS + ("global_norm",)

        def train_loop(iterator, steps):
            """`steps` optimizer steps in one call; returns their mean metrics and each loss."""

            def body(i, sums, losses):
                per_replica = strategy.run(replica_step, args=(next(iterator),))
                m = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica[k], axis=None)
                     for k in keys}
                return i + 1, {k: sums[k] + m[k] for k in keys}, losses.write(i, m["loss"])

            init = (tf.constant(0), {k: tf.constant(0.0) for k in keys},
                    tf.TensorArray(tf.float32, size=steps))
            _, sums, losses = tf.while_loop(lambda i, *_: i < steps, body, init)
            n = tf.cast(steps, tf.float32)
            return {k: v / n for k, v in sums.items()}, losses.stack()

        return tf.function(train_loop, autograph=False)

    # ---------------------------------------------------------------- train
    def train(self, on_checkpoint: Callable[[int, str], None] | None = None) -> TrainResult:
        """Trains to --num_train_steps, saving every --save_checkpoints_steps and at the end.

        `on_checkpoint(step, prefix)` is called after each save (e.g. to upload or evaluate it).
        Raises NonFiniteLossError (nothing saved) when the loss becomes NaN or Inf.
        """
        opts = self.opts
        if self._resume_state is None:
            log.info("%s", self.restore_or_initialize())
        dataset = self._distributed_dataset(is_training=True)
        iterator = iter(dataset)
        if self._train_loop_fn is None:
            self._train_loop_fn = self._build_train_loop()
        writer = tf.summary.create_file_writer(opts.output_dir) if self.is_chief else None
        step = self.global_step
        losses, checkpoints, metrics = [], [], {}
        while step < opts.num_train_steps:
            next_save = (step // opts.save_checkpoints_steps + 1) * opts.save_checkpoints_steps
            n = min(opts.iterations_per_loop, next_save - step, opts.num_train_steps - step)
            skipped_before = self._skipped_steps()
            t0 = time.perf_counter()
            try:
                means, step_losses = self._train_loop_fn(iterator, tf.constant(n, tf.int32))
            except tf.errors.InvalidArgumentError as e:
                msg = parse_error_message(e, opts.max_seq_length, opts.max_predictions_per_seq)
                if msg is None:
                    raise
                raise ValueError(f"{msg} (training stopped after step {step})") from None
            step_losses = step_losses.numpy().tolist()
            elapsed = time.perf_counter() - t0
            metrics = {k: float(v) for k, v in means.items()}
            bad = [i for i, v in enumerate(step_losses) if not math.isfinite(v)]
            if bad or not math.isfinite(metrics["global_norm"]):
                first = step + (bad[0] + 1 if bad else n)
                value = step_losses[bad[0]] if bad else metrics["loss"]
                raise NonFiniteLossError(
                    f"loss became {value} at step {first} (global gradient norm "
                    f"{metrics['global_norm']}); training stopped, no checkpoint was written after "
                    f"step {step}; latest good checkpoint: {self.manager.latest}. Lower "
                    f"--learning_rate or check the input.")
            if self.loss_scale is not None:
                skipped = self._skipped_steps() - skipped_before
                scale = float(self.loss_scale.scale.numpy())
                metrics["loss_scale"] = scale
                metrics["skipped_steps"] = skipped
                # skipped steps report norm 0: average over the applied ones
                metrics["global_norm"] = (metrics["global_norm"] * n / (n - skipped)
                                          if skipped < n else float("nan"))
                if skipped:
                    log.info("float16: %d of %d steps up to step %d had Inf/NaN gradients and were "
                             "skipped; loss scale now %g", skipped, n, step + n, scale)
                if scale < 1.0:
                    raise NonFiniteLossError(
                        f"the float16 loss scale fell to {scale:g} at step {step + n}: the gradients "
                        f"are Inf/NaN at every scale, so the model has diverged (the skipped steps "
                        f"changed no variable); no checkpoint was written after step {step}; "
                        f"latest good checkpoint: {self.manager.latest}. Lower --learning_rate, "
                        f"or train with --precision=float32 to find where it overflows.")
            step += n
            # the rate of the last update of this loop (the schedule's value after step - 1 updates)
            lr = float(self.optimizer.learning_rate_at(step - 1))
            self.examples_consumed += n * opts.train_batch_size
            losses.extend(step_losses)
            metrics["learning_rate"] = lr
            metrics["examples_per_sec"] = n * opts.train_batch_size / elapsed
            metrics["global_step_per_sec"] = n / elapsed
            if opts.log_every_loop:
                log.info("step %d: loss %.4f mlm_loss %.4f mlm_acc %.4f nsp_loss %.4f lr %.3g "
                         "%.1f examples/s", step, metrics["loss"], metrics["masked_lm_loss"],
                         metrics["masked_lm_accuracy"], metrics["next_sentence_loss"], lr,
                         metrics["examples_per_sec"])
            if writer is not None:
                scalars = {k: metrics[k] for k in ("loss", "masked_lm_loss", "masked_lm_accuracy",
                                                   "next_sentence_loss", "next_sentence_accuracy",
                                                   "learning_rate", "global_norm")}
                if self.loss_scale is not None:
                    scalars.update(loss_scale=metrics["loss_scale"],
                                   skipped_steps=metrics["skipped_steps"])
                    if not math.isfinite(scalars["global_norm"]):
                        del scalars["global_norm"]  # every step of the loop was skipped
                _write_scalars(writer, step, {**scalars,
                                              "examples/sec": metrics["examples_per_sec"],
                                              "global_step/sec": metrics["global_step_per_sec"]})
            if step % opts.save_checkpoints_steps == 0 or step == opts.num_train_steps:
                prefix = self.save()
                if prefix is not None:
                    checkpoints.append(prefix)
                    if on_checkpoint is not None:
                        on_checkpoint(step, prefix)
        return TrainResult(global_step=step, losses=losses, metrics=metrics, checkpoints=checkpoints)

    def _skipped_steps(self) -> int:
        if self.loss_scale is None:
            return 0
        return int(self.loss_scale.skipped_steps.numpy())

    def save(self) -> str | None:
        """Writes model.ckpt-<global_step> (chief only) with the input position sidecar."""
        if not self.is_chief:
            return None
        files = self._input_files() if self.opts.input_file else []
        state = {"global_step": self.global_step, "examples_consumed": self.examples_consumed,
                 "train_batch_size": self.opts.train_batch_size, "seed": self.opts.seed,
                 "num_input_pipelines": getattr(self, "_num_pipelines", 1),
                 "input_fingerprint": _fingerprint(files)}
        prefix = self.manager.save(self.global_step, self.checkpoint_tensors(), input_state=state)
        log.info("saved %s", prefix)
        return prefix

    # ---------------------------------------------------------------- eval
    def evaluate(self) -> dict:
        """run_pretraining.py's eval: --max_eval_steps batches of --eval_batch_size, metrics
        masked_lm_accuracy/loss (weighted), next_sentence_accuracy/loss, loss; written to
        <output_dir>/eval_results.txt in Google's format."""
        opts = self.opts
        if self._resume_state is None:
            log.info("%s", self.restore_or_initialize(model_only=True))
        iterator = iter(self._distributed_dataset(is_training=False))
        strategy = self.strategy
        use_nsp = opts.use_nsp

        def replica_eval(features):
            out = self.model(features["input_ids"], features["input_mask"], features["segment_ids"],
                             features["masked_lm_positions"], training=False)
            m = pretraining_loss_and_metrics(out, features, use_nsp=use_nsp)
            return {k: m[k] for k in _EVAL_SUMS}

        if self._eval_loop_fn is None:
            def eval_loop(iterator, steps):
                def body(i, sums):
                    per_replica = strategy.run(replica_eval, args=(next(iterator),))
                    return i + 1, {k: sums[k] + strategy.reduce(tf.distribute.ReduceOp.SUM,
                                                                per_replica[k], axis=None)
                                   for k in _EVAL_SUMS}

                init = (tf.constant(0), {k: tf.constant(0.0) for k in _EVAL_SUMS})
                return tf.while_loop(lambda i, _: i < steps, body, init)[1]

            self._eval_loop_fn = tf.function(eval_loop, autograph=False)
        sums = {k: float(v) for k, v in self._eval_loop_fn(iterator, tf.constant(opts.max_eval_steps)).items()}
        replicas = strategy.num_replicas_in_sync
        result = {
            "global_step": self.global_step,
            "loss": sums["loss"] / (opts.max_eval_steps * replicas),
            "masked_lm_accuracy": sums["mlm_correct_sum"] / max(sums["mlm_weight_sum"], 1e-12),
            "masked_lm_loss": sums["mlm_loss_sum"] / max(sums["mlm_weight_sum"], 1e-12),
        }
        if use_nsp:
            result["next_sentence_accuracy"] = sums["nsp_correct_sum"] / max(sums["nsp_count"], 1e-12)
            result["next_sentence_loss"] = sums["nsp_loss_sum"] / max(sums["nsp_count"], 1e-12)
        if self.is_chief:
            tf.io.gfile.makedirs(opts.output_dir)
            with tf.io.gfile.GFile(f"{opts.output_dir.rstrip('/')}/eval_results.txt", "w") as f:
                f.write("***** Eval results *****\n")
                for key in sorted(result):
                    f.write(f"{key} = {result[key]}\n")
            writer = tf.summary.create_file_writer(f"{opts.output_dir.rstrip('/')}/eval")
            _write_scalars(writer, self.global_step,
                           {k: v for k, v in result.items() if k != "global_step"})
        log.info("eval at step %d: %s", self.global_step, result)
        return result


def run(opts: TrainOptions, strategy=None, on_checkpoint=None) -> dict:
    """--do_train and/or --do_eval, as run_pretraining.py main(). Returns {'train': TrainResult,
    'eval': dict} for what ran."""
    if not (opts.do_train or opts.do_eval):
        raise ValueError("at least one of --do_train or --do_eval must be true")
    trainer = Trainer(opts, strategy=strategy)
    out = {}
    if opts.do_train:
        out["train"] = trainer.train(on_checkpoint=on_checkpoint)
    if opts.do_eval:
        out["eval"] = trainer.evaluate()
    return out


