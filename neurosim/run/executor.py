"""Where evaluations (simulations, trainings, scores) run: Ray tasks, or this process.

    with make_executor(workers=2) as ex:                 # a local Ray instance, 2 CPUs
        futs = [ex.submit(fn, arg) for arg in args]      # futures may be passed as arguments
        for fut, value in ex.as_completed(futs): ...     # as each finishes

* ``workers=0``: :class:`InProcess` runs each task in this process, lazily, in submission order,
  when ``as_completed`` reaches it (so results are written as they finish, as with Ray).
* ``address=None``, ``workers=N >= 1``: a local Ray instance with N CPUs starts with the
  executor and stops with it.
* ``address="host:port"`` (or ``"ray://host:port"``, ``"auto"``): join an existing cluster;
  unreachable addresses fail fast with a clear :class:`ExecutorError`. The workers must import
  this package and see the files a task names (shared file system or the same checkout).

Both executors call the same task functions with the same arguments, so a task's result does
not depend on where it ran (tasks must pin their own thread counts). Ray wraps a task's
exception; it is unwrapped here, so callers see the original error.
"""
from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

RAY_CONNECT_TIMEOUT_S = 3.0


class ExecutorError(ValueError):
    """The executor cannot start or join its workers (the message says why and where)."""


class _Lazy:
    """An in-process future: runs ``fn(*args)`` the first time its value is asked for."""

    __slots__ = ("fn", "args", "kw", "_done", "_value")

    def __init__(self, fn, args, kw):
        self.fn, self.args, self.kw = fn, args, kw
        self._done, self._value = False, None

    def value(self):
        if not self._done:
            args = [a.value() if isinstance(a, _Lazy) else a for a in self.args]
            kw = {k: v.value() if isinstance(v, _Lazy) else v for k, v in self.kw.items()}
            self._value, self._done = self.fn(*args, **kw), True
            self.fn = self.args = self.kw = None
        return self._value


class InProcess:
    """Tasks run in this process (``--workers 0``): same task functions, no Ray."""

    name = "in-process"
    workers = 0

    def submit(self, fn: Callable, *args, **kw) -> _Lazy:
        return _Lazy(fn, args, kw)

    def put(self, value):
        return value

    def as_completed(self, futures: Iterable) -> Iterator[tuple]:
        for f in futures:
            yield f, f.value()

    def close(self) -> None:
        pass


def _check_reachable(address: str) -> None:
    """Fail fast on ``host:port`` / ``ray://host:port`` addresses nothing listens on."""
    target = address.split("://", 1)[-1]
    if address == "auto" or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise ExecutorError(f"--ray-address {address!r}: the port {port!r} is not a "
                            f"number (expected host:port, ray://host:port or auto)") from None
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", port_n),
                                      timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ExecutorError(f"cannot reach a Ray cluster at {address}: {e.strerror or e} "
                            f"(is `ray start --head` running there?); leave out --ray-address "
                            f"to start a local Ray instance") from None


class RayExecutor:
    """Tasks are Ray tasks (one CPU each) on a local instance started here, or on the cluster
    at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        try:
            import ray
        except ImportError as e:
            raise ExecutorError(f"Ray is not installed ({e}); install the project "
                                f"(pip install -e .) or use --workers 0") from None
        self.ray, self._remote, self.address = ray, {}, address
        if ray.is_initialized():
            self.owner = False
        elif address is not None:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except Exception as e:                       # ray raises several kinds here
                raise ExecutorError(f"cannot join the Ray cluster at {address}: {e}") from None
            self.owner = True
        else:
            n = workers or os.cpu_count() or 1
            ray.init(num_cpus=n, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False)
            self.owner = True
        self.workers = int(ray.cluster_resources().get("CPU", 0))

    def submit(self, fn: Callable, *args, **kw):
        r = self._remote.get(fn)
        if r is None:
            r = self._remote[fn] = self.ray.remote(num_cpus=1, max_retries=0)(fn)
        return r.remote(*args, **kw)

    def put(self, value):
        return self.ray.put(value)

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def as_completed(self, futures: Iterable) -> Iterator[tuple]:
        pending = list(futures)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            for ref in done:
                yield ref, self._get(ref)

    def close(self) -> None:
        if self.owner and self.ray.is_initialized():
            self.ray.shutdown()


@contextmanager
def make_executor(workers: int | None = None, address: str | None = None):
    """The executor for ``--workers`` / ``--ray-address`` (module doc); closed on exit."""
    if workers is not None and (int(workers) != workers or workers < 0):
        raise ExecutorError(f"--workers must be an integer >= 0, got {workers}")
    if workers == 0 and address is not None:
        raise ExecutorError("--workers 0 runs in this process and --ray-address joins a "
                            "cluster: give one or the other")
    ex = InProcess() if workers == 0 else RayExecutor(workers, address)
    try:
        yield ex
    finally:
        ex.close()


__all__ = ["ExecutorError", "InProcess", "RayExecutor", "make_executor"]
