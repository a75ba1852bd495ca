"""Ray scale-out: start or join a Ray cluster and run independent jobs as Ray tasks.

Ray is an optional extra (``pip install 'dus-env[ray]'``). Nothing here imports it at module
import time: :func:`require_ray` does, and fails with a message naming the extra. The library
``dus_env`` never imports this module.

* :func:`connect` starts Ray on this machine (no address) or joins a running cluster
  (``address``), checking first that the address answers, so a wrong address fails in seconds.
* :func:`run_tasks` runs one Ray task per job with its own resources (CPUs, a GPU fraction),
  retries a job whose worker died or raised (Ray's ``max_retries``, bounded), and yields each
  job's :class:`TaskOutcome` as soon as it finishes (``ray.wait``), in finishing order.
* :class:`KillProcessAtStep` is a fault-injection wrapper for tests: it kills its own process
  (SIGKILL, as the kernel's OOM killer would) in the middle of an episode.

:mod:`dus_agents.ray_vec_env` holds the Stable-Baselines3 VecEnv whose envs live in Ray actors.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from dus_env.errors import RayConnectionError, RayNotInstalledError

RAY_EXTRA = "pip install 'dus-env[ray]'"
"""How to install the optional Ray dependency (named in every 'Ray is missing' error)."""
DEFAULT_PORT = 6379
"""Port of a Ray head node's GCS when an address gives none (``ray start --head`` default)."""
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
"""Object store of a Ray instance started on this machine: rows, traces and policy files are
small, and Ray's default (30% of RAM) would crowd a shared machine."""


def require_ray():
    """Import and return the ``ray`` module, or raise :class:`RayNotInstalledError`."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"the Ray backend needs Ray, which is not installed here ({exc}); install the "
            f"optional extra: {RAY_EXTRA}"
        ) from None
    return ray


def available_cpus() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` to probe for a Ray address, or None where Ray resolves it itself
    (``auto``, ``local``). Accepts ``host``, ``host:port``, ``[v6]:port`` and ``ray://host:port``
    (Ray Client)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    elif scheme not in ("ray", "ray+tls"):
        raise RayConnectionError(
            f"--address={address!r}: unsupported scheme {scheme + '://'!r}; give host:port of a "
            "Ray head node (e.g. 10.0.0.5:6379), ray://host:10001 (Ray Client) or 'auto'"
        )
    default_port = 10001 if scheme else DEFAULT_PORT
    if rest.startswith("["):  # [ipv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host, port_text = rest, ""
    if not host:
        raise RayConnectionError(f"--address={address!r} names no host; give host:port")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise RayConnectionError(
            f"--address={address!r}: port {port_text!r} is not an integer"
        ) from None
    if not 0 < port < 65536:
        raise RayConnectionError(f"--address={address!r}: port {port} is out of range 1-65535")
    return host, port


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise :class:`RayConnectionError` naming ``address`` unless a TCP connection to it opens
    within ``timeout`` seconds (Ray itself would retry for a minute before giving up)."""
    target = split_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayConnectionError(
            f"--address={address!r}: no Ray cluster answers at {target[0]}:{target[1]} "
            f"({reason} after at most {timeout:g} s). Start one there with `ray start --head`, "
            "or leave --address out to run Ray on this machine."
        ) from None


@dataclass
class RaySession:
    """A Ray instance this program uses; :meth:`close` shuts it down only if we started it."""

    started: bool
    """True when :func:`connect` started a local instance (and so owns it)."""
    address: str
    """The GCS address of the cluster (``ray.get_runtime_context().gcs_address``)."""
    resources: dict[str, float]
    """``ray.cluster_resources()`` when connected."""

    def close(self) -> None:
        if self.started:
            import ray

            if ray.is_initialized():
                ray.shutdown()
            self.started = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: str | None = None, num_cpus: int | None = None,
            connect_timeout: float = 5.0, log_to_driver: bool = True) -> RaySession:
    """Join the Ray cluster at ``address`` or, with none, start Ray on this machine.

    * A Ray already initialised in this process (by a caller, a notebook, a test fixture) is
      reused as it is and never shut down here (a given address must still answer).
    * No address (and no ``RAY_ADDRESS`` in the environment): a local instance with ``num_cpus``
      logical CPUs (default: the cores this process may use), no dashboard, and a 512 MiB
      object store; :meth:`RaySession.close` shuts it down.
    * An address: probed first (fails within ``connect_timeout`` seconds, naming it), then
      joined; the cluster's own resources apply and ``num_cpus`` is ignored.
    """
    ray = require_ray()
    if address:
        check_reachable(address, connect_timeout)
    if ray.is_initialized():
        return RaySession(False, ray.get_runtime_context().gcs_address, ray.cluster_resources())
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address, connect_timeout)
        try:
            ray.init(address=address, log_to_driver=log_to_driver)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; name the address
            raise RayConnectionError(
                f"--address={address!r}: could not join the Ray cluster there "
                f"({type(exc).__name__}: {exc})"
            ) from None
        started = False
    else:
        if num_cpus is not None and num_cpus < 1:
            raise ValueError(f"num_cpus={num_cpus} is out of range; valid range: [1, inf)")
        ray.init(num_cpus=num_cpus or available_cpus(), include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=log_to_driver)
        started = True
    return RaySession(started, ray.get_runtime_context().gcs_address, ray.cluster_resources())


_WORKER_CACHE: dict[Hashable, Any] = {}


def worker_cache(key: Hashable, factory: Callable[[], Any]) -> Any:
    """A per-process cache for Ray workers (which run many tasks one after another): the value
    stored under ``key``, built by ``factory()`` the first time."""
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = factory()
    return _WORKER_CACHE[key]


def check_fits(session: RaySession, flag_cpus: str, cpus: float, flag_gpus: str,
               gpus: float, count: int = 1, what: str = "") -> str | None:
    """Whether ``count`` tasks or actors asking ``cpus`` CPUs and ``gpus`` GPUs each can be
    scheduled at the same time (actors must all be placed; queued tasks need ``count=1``).

    On a Ray instance started here (no autoscaler) a request larger than the machine would wait
    forever: raises ``ValueError`` naming the flag. On a joined cluster (which an autoscaler may
    grow) returns a warning to print instead, or None when it fits.
    """
    have = {"CPU": session.resources.get("CPU", 0.0), "GPU": session.resources.get("GPU", 0.0)}
    for flag, name, each in ((flag_cpus, "CPU", cpus), (flag_gpus, "GPU", gpus)):
        want = each * count
        if want > have[name]:
            times = f" for each of {count} {what} ({want:g} in all)" if count > 1 else ""
            text = (f"{flag}={each:g}{times} asks for more {name}s than the Ray cluster at "
                    f"{session.address} has ({have[name]:g})")
            if session.started:
                raise ValueError(text + "; lower it" + (" (or raise --ray-cpus)"
                                                         if name == "CPU" else ""))
            return "warning: " + text + "; its tasks wait until the cluster grows"
    return None


def open_session(address: str | None, ray_cpus: int | None, flag_cpus: str, cpus: float,
                 flag_gpus: str, gpus: float, *, count: int = 1, what: str = "",
                 log_to_driver: bool = True) -> tuple[RaySession, str | None]:
    """:func:`connect`, then :func:`check_fits`, for a command line: (the session, a warning to
    print or None); every failure is a :class:`~dus_env.errors.UsageError` naming the flag."""
    from dus_env.errors import UsageError

    try:
        session = connect(address or None, num_cpus=ray_cpus or None,
                          log_to_driver=log_to_driver)
    except (RayNotInstalledError, RayConnectionError) as err:
        raise UsageError(f"Ray: {err}") from None
    try:
        warning = check_fits(session, flag_cpus, cpus, flag_gpus, gpus, count=count, what=what)
    except ValueError as err:
        session.close()
        raise UsageError(str(err)) from None
    return session, warning


# --------------------------------------------------------------------------- task sweeps
@dataclass(frozen=True)
class TaskResources:
    """What each job's Ray task asks for, and how often it is retried."""

    num_cpus: float = 1.0
    """Logical CPUs reserved per task (Ray schedules no more tasks on a node than fit)."""
    num_gpus: float = 0.0
    """GPUs per task; a fraction such as 0.25 packs four tasks on one GPU."""
    max_retries: int = 2
    """Extra attempts after a task's worker dies (crash, OOM kill, lost node) or the task
    raises; 0: no retry."""

    def __post_init__(self) -> None:
        if self.num_cpus < 0:
            raise ValueError(f"cpus per task={self.num_cpus} is out of range; valid: >= 0")
        if self.num_gpus < 0:
            raise ValueError(f"gpus per task={self.num_gpus} is out of range; valid: >= 0")
        if self.max_retries < 0:
            raise ValueError(f"max retries={self.max_retries} is out of range; valid: >= 0")


@dataclass
class TaskOutcome:
    """One finished job: its value, or the error that ended its last attempt."""

    key: Hashable
    value: Any = None
    error: str | None = None
    """``None`` on success, else ``"ExceptionType: message"`` of the final failure."""
    attempts: int = 0
    """Attempts that started (1 = no retry); 0 where the attempt ledger had no count."""

    @property
    def ok(self) -> bool:
        return self.error is None


class _AttemptLedger:
    """Counts the attempts started per job (a Ray actor; every attempt reports as it starts).
    Keys are ``(sweep id, job key)``; one ledger serves every sweep of a driver."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def start(self, key: Any) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def attempts(self, key: Any) -> int:
        return self.counts.get(key, 0)

    def forget(self, sweep: str) -> None:
        self.counts = {k: v for k, v in self.counts.items() if k[0] != sweep}


_LEDGERS: dict[tuple[str, str], Any] = {}


def _ledger(ray: Any) -> Any:
    """This driver's attempt ledger (started once per Ray session and job, then reused, so
    short sweeps do not wait for a new actor process each time)."""
    context = ray.get_runtime_context()
    session = (context.get_session_name(), context.get_job_id())
    if session not in _LEDGERS:
        _LEDGERS[session] = ray.remote(num_cpus=0, max_restarts=-1)(_AttemptLedger).remote()
    return _LEDGERS[session]


def _run_attempt(fn: Callable[..., Any], key: Any, ledger: Any, *args: Any) -> Any:
    """Body of every Ray task: report the attempt to the ledger, then ``fn(*args)``.

    The report is waited for (milliseconds once the ledger runs): sent and not waited for, it
    was lost with a worker that died at once, and the job came back with 0 attempts. A ledger
    that does not answer within :data:`LEDGER_WAIT_S` costs the count, never the run."""
    import ray

    try:
        ray.get(ledger.start.remote(key), timeout=LEDGER_WAIT_S)
    except (ray.exceptions.RayError, TimeoutError):
        pass
    return fn(*args)


LEDGER_WAIT_S: float = 60.0
"""How long an attempt waits for the ledger to record it before it runs anyway."""


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if cause is not None and not isinstance(cause, type(exc)):
        return f"{type(cause).__name__}: {cause}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def run_tasks(fn: Callable[..., Any], jobs: Sequence[tuple[Hashable, tuple]],
              resources: TaskResources = TaskResources(), name: str = "dus_job",
              ) -> Iterator[TaskOutcome]:
    """Run ``fn(*args)`` for every ``(key, args)`` of ``jobs`` as one Ray task each;
    yield a :class:`TaskOutcome` per job as it finishes (in finishing order).

    Each task reserves ``resources.num_cpus`` CPUs and ``resources.num_gpus`` GPUs. A task whose
    worker process dies, or which raises, is retried by Ray up to ``resources.max_retries``
    times; a job that still fails comes back with ``error`` set (never silently dropped), and
    every job comes back exactly once. ``fn`` must be importable or picklable (cloudpickle) on
    the workers; an ``ObjectRef`` among ``args`` arrives as its value. Needs an initialised Ray
    (:func:`connect`). Leaving the generator early cancels the tasks not yet finished.
    """
    ray = require_ray()
    if not jobs:
        return
    ledger = _ledger(ray)
    sweep = uuid.uuid4().hex
    task = ray.remote(_run_attempt).options(
        num_cpus=resources.num_cpus, num_gpus=resources.num_gpus,
        max_retries=resources.max_retries, retry_exceptions=True, name=name)
    fn_ref = ray.put(fn)
    # job arguments travel as top-level task arguments, so ObjectRefs among them are resolved
    runs = {task.remote(fn_ref, (sweep, key), ledger, *args): key for key, args in jobs}
    counts: dict[Any, TaskOutcome] = {}  # attempt-count query -> the finished job's outcome
    pending = list(runs)
    interrupted = False
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                if ref in runs:  # a job finished: ask how many attempts it took
                    key = runs.pop(ref)
                    try:
                        outcome = TaskOutcome(key, value=ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        outcome = TaskOutcome(key, error=_describe(exc))
                    query = ledger.attempts.remote((sweep, key))
                    counts[query] = outcome
                    pending.append(query)
                else:  # its attempt count came back: report the job
                    outcome = counts.pop(ref)
                    try:
                        outcome.attempts = int(ray.get(ref))
                    except ray.exceptions.RayError:
                        outcome.attempts = 0
                    yield outcome
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # Leaving early cancels what is left; Ctrl-C does not: Ray aborted the driver now and
        # then when a retriable task was cancelled mid-run (a check failure in its task
        # manager, exit 1 and orphaned processes instead of 130), and the tasks end with the
        # driver's Ray session anyway (closed by the caller, or at exit)
        if not interrupted:
            for ref in runs:
                ray.cancel(ref)
        ledger.forget.remote(sweep)


# --------------------------------------------------------------------------- fault injection
class KillProcessAtStep(gym.Wrapper):
    """Kill the current process with SIGKILL inside the ``step``-th call to :meth:`step` (a test
    hook: the closest thing to a worker lost to the OOM killer or a failed node)."""

    def __init__(self, env: gym.Env, step: int) -> None:
        super().__init__(env)
        if step < 1:
            raise ValueError(f"step={step} is out of range; valid range: [1, inf)")
        self.kill_at = int(step)
        self.calls = 0

    def step(self, action):
        self.calls += 1
        if self.calls >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)
