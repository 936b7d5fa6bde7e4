"""A generator run ahead in a thread: same items, its errors raised in the consumer, closed
and joined when the consumer stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import pytest

from dispatcher.readahead import read_ahead


def test_items_arrive_in_order() -> None:
    """Every item, in the generator's order, produced in another thread."""
    threads: set[str] = set()

    def numbers() -> Generator[int, None, None]:
        for n in range(50):
            threads.add(threading.current_thread().name)
            yield n

    assert list(read_ahead(numbers())) == list(range(50))
    assert threads == {"read-ahead"}


def test_producer_error_is_raised_in_the_consumer() -> None:
    """An exception of the generator reaches the consumer after the items before it."""

    def failing() -> Generator[int, None, None]:
        yield 1
        raise ValueError("bad record")

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad record"):
        seen.extend(read_ahead(failing()))
    assert seen == [1]


def test_consumer_error_closes_the_generator_and_joins() -> None:
    """When the consumer fails, the generator is closed (its ``finally`` ran) and its thread
    has ended before the error propagates."""
    closed = threading.Event()

    def endless() -> Generator[int, None, None]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="insert failed"):
        for n in read_ahead(endless()):
            if n == 3:
                raise RuntimeError("insert failed")
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_a_stopped_consumer_costs_at_most_two_more_items() -> None:
    """After the consumer stops, the generator produces no item beyond the one queued and the
    one it was handing over (each item may be a whole chunk of work)."""
    produced: list[int] = []

    def counted() -> Generator[int, None, None]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for n in read_ahead(counted()):
        if n == 3:
            time.sleep(0.05)  # the generator fills the queue and blocks handing over the next
            break
    assert len(produced) <= 6
