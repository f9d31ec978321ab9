"""Solving on a Dask cluster behind the `concurrent.futures.Executor` interface.

`DaskExecutor(address)` is what `[optimizer] executor = "dask"` gives the engine (and what
`scsp solve --batch --executor dask` uses): `submit(fn, *args)` runs `fn(*args)` on a worker of the
dask.distributed scheduler at `address` and returns an ordinary `concurrent.futures.Future`, so
`loop.run_in_executor` and the engine's error handling work unchanged.

What travels: `fn` by name (`module:qualname`: the workers need the same scsp version installed)
and each argument msgspec-encoded as msgpack bytes by the type its annotation names; the worker
decodes them by the same annotations, calls `fn`, and sends the result back msgpack-encoded, which
is decoded here by the return annotation. Nothing numpy-heavy is pickled, and a worker never sees
an object it would have to unpickle by value. `fn` must therefore be a module-level function whose
annotations msgspec can encode (Structs, lists, bytes, ...).

Failures: a task whose worker died (after the scheduler's own `allowed-failures` retries), a
scheduler that cannot be reached or went away, a task without a result `task_timeout_s` after it
was sent (a cluster without workers would otherwise queue it for ever), and an error raised by `fn`
all become the exception of the returned future; the engine answers such a site with its failsafe plan
(`plan_record` with no plan). After a failed connection, submissions fail at once for
`RETRY_CONNECT_S` so a cycle of many sites does not wait for the timeout once per site.
"""

from __future__ import annotations

import functools
import heapq
import importlib
import threading
import time
import typing
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import distributed
import msgspec

__all__ = ["RETRY_CONNECT_S", "DaskExecutor", "LostTask", "run_encoded"]

P = ParamSpec("P")
T = TypeVar("T")

# After a failed connection to the scheduler, fail submissions at once for this long (s).
RETRY_CONNECT_S = 30.0

_encoder = msgspec.msgpack.Encoder()


class LostTask(RuntimeError):
    """A task that ended without a result: cancelled, or its scheduler went away."""


def _target(fn: Callable[..., Any]) -> str:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not name or "<" in name or module == "__main__":
        raise TypeError(f"{fn!r}: only module-level functions of an importable module run on Dask")
    return f"{module}:{name}"


@functools.lru_cache(maxsize=64)
def _resolve(target: str) -> tuple[Callable[..., Any], tuple[Any, ...], Any]:
    """The function named `target`, the types of its positional parameters and of its result."""
    module, _, qualname = target.partition(":")
    fn: Any = importlib.import_module(module)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    hints = typing.get_type_hints(fn)
    result = hints.pop("return", Any)
    return fn, tuple(hints.values()), result


def run_encoded(target: str, blobs: list[bytes]) -> bytes:
    """Worker side: decode the arguments of `target` from msgpack, call it, encode its result."""
    fn, types, _ = _resolve(target)
    if len(blobs) > len(types):
        raise TypeError(f"{target}: {len(blobs)} arguments for {len(types)} annotated parameters")
    args = [msgspec.msgpack.decode(blob, type=kind) for blob, kind in zip(blobs, types, strict=False)]
    return _encoder.encode(fn(*args))


class DaskExecutor(Executor):
    """`concurrent.futures.Executor` over a dask.distributed scheduler (see the module docstring).

    The client connects on the first submission, in a background thread, so neither the service's
    start-up nor its event loop waits for the scheduler.
    """

    def __init__(self, address: str, *, connect_timeout_s: float = 10.0, task_timeout_s: float = 120.0) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self.task_timeout_s = task_timeout_s
        # (deadline, sequence, the caller's future): weakly, so a finished result is not kept alive.
        self._deadlines: list[tuple[float, int, weakref.ref[Future[Any]]]] = []
        self._sequence = 0
        self._wake = threading.Condition()
        self._watchdog: threading.Thread | None = None
        self._client: distributed.Client | None = None
        self._down: tuple[float, BaseException] | None = None
        self._lock = threading.Lock()
        # The Dask future of each caller's future (by id) until it ends: a Dask future dropped is its
        # task released, and one kept holds its result on the worker, so each is kept exactly that long.
        self._inflight: dict[int, distributed.Future[Any]] = {}
        self._dispatch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dask-submit")
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if kwargs:
            raise TypeError("DaskExecutor.submit takes positional arguments only")
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        target = _target(fn)
        _, types, _ = _resolve(target)
        if len(args) > len(types):
            raise TypeError(f"{target}: {len(args)} arguments for {len(types)} annotated parameters")
        blobs = [_encoder.encode(arg) for arg in args]  # here, so a bad argument fails the caller at once
        future: Future[T] = Future()
        self._dispatch.submit(self._send, future, target, blobs)
        return future

    def connect(self) -> None:
        """Connect to the scheduler now (raises when it cannot be reached); `submit` does it lazily."""
        self._connected()

    def threads(self) -> int:
        """Worker threads in the cluster now (connects if needed): how many tasks run at once."""
        return sum(self._connected().nthreads().values())  # type: ignore[no-untyped-call]

    def _send(self, future: Future[Any], target: str, blobs: list[bytes]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            client = self._connected()
            task = client.submit(run_encoded, target, blobs, pure=False)
        except BaseException as exc:  # noqa: BLE001 - every failure belongs to the caller's future
            _fail(future, exc)
            return
        with self._lock:
            self._inflight[id(future)] = task
        self._watch(future)
        task.add_done_callback(functools.partial(self._finished, future, target))  # type: ignore[no-untyped-call]

    def _connected(self) -> distributed.Client:
        with self._lock:
            if self._client is not None and self._client.status in ("running", "connecting", "newly-created"):
                return self._client
            if self._down is not None and time.monotonic() < self._down[0]:
                raise LostTask(f"Dask scheduler {self.address} unreachable") from self._down[1]
            stale, self._client = self._client, None
        if stale is not None:
            _close_quietly(stale)
        try:
            client = distributed.Client(self.address, timeout=self.connect_timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
        except BaseException as exc:
            with self._lock:
                self._down = (time.monotonic() + RETRY_CONNECT_S, exc)
            raise
        with self._lock:
            self._client, self._down = client, None
        return client

    def _finished(self, future: Future[Any], target: str, task: distributed.Future[Any]) -> None:
        with self._lock:
            self._inflight.pop(id(future), None)
        try:
            if task.status == "finished":
                _, _, result_type = _resolve(target)
                _succeed(future, msgspec.msgpack.decode(task.result(), type=result_type))
            elif task.status == "error":
                error = task.exception()  # type: ignore[no-untyped-call]
                _fail(future, error if isinstance(error, BaseException) else LostTask(str(error)))
            else:
                _fail(future, LostTask(f"task {task.key} {task.status}"))
        except BaseException as exc:  # noqa: BLE001 - e.g. the client closed while reading the result
            _fail(future, exc)

    def _watch(self, future: Future[Any]) -> None:
        """Fail `future` (and release its task) when it has no result `task_timeout_s` from now."""
        with self._wake:
            self._sequence += 1
            heapq.heappush(self._deadlines, (time.monotonic() + self.task_timeout_s, self._sequence,
                                             weakref.ref(future)))
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._expire, name="dask-deadlines", daemon=True)
                self._watchdog.start()
            self._wake.notify()

    def _expire(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._deadlines or self._deadlines[0][0] > time.monotonic()):
                    self._wake.wait(None if not self._deadlines else self._deadlines[0][0] - time.monotonic())
                if self._closed:
                    return
                _, _, ref = heapq.heappop(self._deadlines)
            future = ref()
            if future is None or future.done():
                continue
            with self._lock:
                task = self._inflight.pop(id(future), None)
            _fail(future, LostTask(f"no result within {self.task_timeout_s:g} s"))
            if task is not None:
                try:
                    task.release()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001 - the client may be closing
                    pass

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        with self._wake:
            self._wake.notify()
        self._dispatch.shutdown(wait=wait, cancel_futures=cancel_futures)
        with self._lock:
            client, self._client = self._client, None
            inflight, self._inflight = list(self._inflight.values()), {}
        if client is not None:
            if cancel_futures and inflight:
                try:
                    client.cancel(inflight)  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
            _close_quietly(client)


def _close_quietly(client: distributed.Client) -> None:
    try:
        client.close(timeout=5)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - a client to a dead scheduler may fail to close cleanly
        pass


def _succeed(future: Future[Any], value: Any) -> None:
    try:
        future.set_result(value)
    except InvalidStateError:  # cancelled meanwhile
        pass


def _fail(future: Future[Any], exc: BaseException) -> None:
    try:
        future.set_exception(exc)
    except InvalidStateError:
        pass
