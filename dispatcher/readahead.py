"""Run a generator ahead of its consumer in a thread, so the two use both cores.

The ingest's pipeline (Arrow and numpy kernels, which release the GIL) and the database insert
(SQLite steps, a PostgreSQL ``COPY``, also outside the GIL) can run at once: the pipeline
prepares the next batch while the previous one is written. The generator runs in one worker
thread, at most ``depth`` items ahead; its exceptions are raised in the consumer, as if it ran
there. When the consumer stops early (an error while writing, a ``break``), the generator is
closed and its thread joined before control returns, so nothing it owns (a reject file, the
estimate) is touched after the consumer moves on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator
from queue import Empty, Queue
from typing import TypeVar, cast

__all__ = ["read_ahead"]

T = TypeVar("T")

_DONE = object()


def read_ahead(items: Generator[T, None, None], *, depth: int = 1) -> Iterator[T]:
    """The items of ``items``, produced in a worker thread at most ``depth`` ahead."""
    queue: Queue[tuple[object, BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                queue.put((item, None))
                if stop.is_set():  # before producing another item nobody will take
                    break
            else:
                queue.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((_DONE, exc))
        finally:
            items.close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield cast(T, item)
    finally:
        stop.set()
        while worker.is_alive():  # take what it is blocked putting, until it sees stop
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)
        worker.join()
