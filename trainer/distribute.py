"""Choosing and connecting a tf.distribute strategy from the CLI flags."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger("wwm_trainer")

STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "one_device")


class NoTPUError(RuntimeError):
    """A TPU was requested (--use_tpu / --strategy=tpu) and none could be reached."""


def _tf_config_workers() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError:
        return 0
    return sum(len(cluster.get(k, [])) for k in ("chief", "worker"))


def connect_tpu(tpu_name=None, tpu_zone=None, gcp_project=None):
    """TPUStrategy for `tpu_name` ('local' on a TPU VM, a TPU node name, or grpc://host:port).

    Raises NoTPUError naming the TPU and the reason when there is no TPU to connect to.
    """
    where = f"--tpu_name={tpu_name!r}" + (f" --tpu_zone={tpu_zone!r}" if tpu_zone else "") + \
        (f" --gcp_project={gcp_project!r}" if gcp_project else "")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu_name, zone=tpu_zone, project=gcp_project)
        if tpu_name not in (None, "", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except Exception as e:  # the resolver raises ValueError, URLError, NotFoundError, ...
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NoTPUError(
            f"a TPU was requested (--use_tpu or --strategy=tpu) but none was found for {where}: "
            f"{type(e).__name__}: {first_line[:300]}. On a TPU VM pass --tpu_name=local; for a TPU "
            f"node pass its name with --tpu_zone/--gcp_project; without a TPU drop --use_tpu.") from None
    return strategy


def resolve_strategy(strategy: str = "auto", *, use_tpu: bool = False, tpu_name=None,
                     tpu_zone=None, gcp_project=None, num_tpu_cores=None) -> tf.distribute.Strategy:
    """The strategy for `--strategy` ('auto' picks TPU if --use_tpu, MultiWorkerMirrored if
    TF_CONFIG lists several workers, Mirrored with several GPUs, else OneDevice)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if use_tpu and strategy not in ("auto", "tpu"):
        raise ValueError(f"--use_tpu conflicts with --strategy={strategy}; use --strategy=tpu or auto")
    if strategy == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        if use_tpu:
            strategy = "tpu"
        elif _tf_config_workers() > 1:
            strategy = "multi_worker"
        elif len(gpus) > 1:
            strategy = "mirrored"
        else:
            strategy = "one_device"
    if strategy == "tpu":
        result = connect_tpu(tpu_name, tpu_zone, gcp_project)
        if num_tpu_cores and result.num_replicas_in_sync != num_tpu_cores:
            raise ValueError(f"--num_tpu_cores={num_tpu_cores} but the TPU has "
                             f"{result.num_replicas_in_sync} cores")
    elif strategy == "multi_worker":
        result = tf.distribute.MultiWorkerMirroredStrategy()
    elif strategy == "mirrored":
        result = tf.distribute.MirroredStrategy()
    else:
        gpus = tf.config.list_logical_devices("GPU")
        result = tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    log.info("strategy %s with %d replica(s)", type(result).__name__, result.num_replicas_in_sync)
    return result


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and summaries (task 0 of a multi-worker job)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
