"""Choosing and connecting a tf.distribute strategy from the CLI flags."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import urllib.parse

import tensorflow as tf

log = logging.getLogger("wwm_trainer")

STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "one_device")
_TPU_ENV = ("TPU_NAME", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS", "TPU_CONFIG")


class NoTPUError(RuntimeError):
    """A TPU was requested (--use_tpu / --strategy=tpu) and none could be reached."""


def _tf_config_workers() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError:
        return 0
    return sum(len(cluster.get(k, [])) for k in ("chief", "worker"))


def _describe_request(tpu_name, tpu_zone, gcp_project) -> str:
    where = f"--tpu_name={tpu_name!r}"
    if tpu_zone:
        where += f" --tpu_zone={tpu_zone!r}"
    if gcp_project:
        where += f" --gcp_project={gcp_project!r}"
    if not tpu_name:
        env = {k: os.environ[k] for k in _TPU_ENV if k in os.environ}
        where += (" (" + ", ".join(f"{k}={v!r}" for k, v in env.items()) + ")" if env else
                  f" ({', '.join(_TPU_ENV[:-1])} and {_TPU_ENV[-1]} not set)")
    return where


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}".rstrip(":. ")


def _check_reachable(master: str, timeout_s: float) -> None:
    """Checks that a TensorFlow worker answers at the grpc://host:port a TPU resolves to: a TCP
    connection, then the worker service's GetStatus call with a deadline. TF's own connect waits
    forever for a worker that is not there, or that accepts the connection and never answers."""
    parsed = urllib.parse.urlsplit(master)
    host, port = parsed.hostname, parsed.port or 8470
    if not host:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port} ({e.strerror or e})") from None
    try:
        import grpc  # installed with tensorflow
    except ImportError:  # pragma: no cover
        return
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        # an empty GetStatusRequest; any reply, even an error status, means a server answered
        channel.unary_unary("/tensorflow.WorkerService/GetStatus")(b"", timeout=timeout_s)
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
            raise ConnectionError(
                f"{host}:{port} accepts connections, but no TensorFlow worker answered within "
                f"{timeout_s:g} s ({e.code().name})") from None
    finally:
        channel.close()


_WATCHDOG = """
import os, select, signal, sys, time
pid, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)  # the pipe closed: the call finished, or the process ended
sys.stderr.write("wwm-train: error: " + message + "\\n")
sys.stderr.flush()
os.kill(pid, signal.SIGTERM)
time.sleep(5)
try:
    os.kill(pid, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


class _Watchdog:
    """Stops this process (SIGTERM, then SIGKILL) with `message` on stderr if the `with` body is
    still running after `timeout_s`.

    TF's connect and TPU initialisation are C++ calls that hold the GIL and cannot be
    interrupted, so no thread of this process could act: a small watcher process does, and it
    exits on its own when the body ends (its stdin pipe closes) or this process dies."""

    def __init__(self, timeout_s: float, message: str):
        self.timeout_s, self.message = timeout_s, message
        self._proc = None

    def __enter__(self):
        if self.timeout_s and os.name == "posix":
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.timeout_s), self.message],
                stdin=subprocess.PIPE)
        return self

    def __exit__(self, *exc):
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait()


def connect_tpu(tpu_name=None, tpu_zone=None, gcp_project=None, *,
                timeout_s: float = 600.0) -> tf.distribute.TPUStrategy:
    """TPUStrategy for the TPU that TPUClusterResolver finds, connected and initialised as TF's
    own `TPUClusterResolver.connect` does (experimental_connect_to_cluster, then
    initialize_tpu_system).

    `tpu_name`: 'local' on a TPU VM, a Cloud TPU node name (with `tpu_zone`/`gcp_project` off
    GCE), or a grpc://host:port address (`--master`). None (or '') lets TPUClusterResolver find
    it from the environment: TPU_NAME (a name, an address or 'local'), GKE's
    KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS, or the node configuration in TPU_CONFIG.

    Raises NoTPUError naming what was tried when no TPU resolves or answers. A grpc address is
    checked first (TCP, then a TensorFlow worker's GetStatus, each within min(timeout_s, 30) s),
    because TF's connect would wait forever. If connecting and initialising still take longer
    than `timeout_s` seconds (0: no limit), a watcher process stops this one with the error
    (TF's call holds the GIL and cannot be interrupted from Python).
    """
    where = _describe_request(tpu_name, tpu_zone, gcp_project)
    advice = ("On a TPU VM pass --tpu_name=local; for a TPU node pass its name (with "
              "--tpu_zone/--gcp_project when not on a GCE VM) or its grpc://host:8470 address "
              "(--master), or set TPU_NAME; without a TPU drop --use_tpu.")

    def fail(reason):
        return NoTPUError(f"a TPU was requested (--use_tpu or --strategy=tpu) but none was found "
                          f"for {where}: {reason}. {advice}")

    tpu = tpu_name or None
    if tpu is None and os.environ.get("TPU_NAME", "").strip() == "local":
        tpu = "local"  # the resolver would look 'local' up in the Cloud TPU API
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu, zone=tpu_zone, project=gcp_project)
        master = resolver.master()
    except Exception as e:  # ValueError, URLError, googleapiclient errors, ...
        raise fail(_first_line(e)) from None
    if master.startswith("grpc://"):
        try:
            _check_reachable(master, min(timeout_s or 30.0, 30.0))
        except ConnectionError as e:
            raise fail(f"it resolved to {master}: {e}") from None
    log.info("connecting to the TPU for %s (master %r)", where, master or "local")
    message = (f"a TPU was requested for {where} (master {master!r}) but connecting and "
               f"initialising it did not finish within --tpu_connect_timeout={timeout_s:g} s. "
               f"{advice}")
    try:
        with _Watchdog(timeout_s, message):
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
    except Exception as e:  # NotFoundError (no TPU devices), UnavailableError, ...
        raise fail(_first_line(e)) from None
    return strategy


def resolve_strategy(strategy: str = "auto", *, use_tpu: bool = False, tpu_name=None,
                     tpu_zone=None, gcp_project=None, num_tpu_cores=None,
                     tpu_connect_timeout: float = 600.0) -> tf.distribute.Strategy:
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
        result = connect_tpu(tpu_name, tpu_zone, gcp_project, timeout_s=tpu_connect_timeout)
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
