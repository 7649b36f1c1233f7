"""The heap keeper freezes long-lived objects and reclaims frozen garbage cycles on its schedule."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from conference.serving.heap import HeapKeeper


class Node:
    """A tracked object that can be weakly referenced and can take part in a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thaw_after_test() -> Iterator[None]:
    """The keeper freezes the test process's heap: give every object back to the collector afterwards."""
    yield
    gc.unfreeze()
    gc.collect()


def is_frozen(obj: object) -> bool:
    # gc.get_objects() lists the three generations, not the permanent one that gc.freeze() fills.
    return gc.is_tracked(obj) and not any(candidate is obj for candidate in gc.get_objects())


def test_tend_freezes_objects_that_survive_a_young_collection() -> None:
    keeper = HeapKeeper()
    keeper.tend()
    survivor = Node()
    assert not is_frozen(survivor)

    keeper.tend()

    assert is_frozen(survivor)


def test_frozen_objects_without_cycles_are_freed_by_reference_counting() -> None:
    keeper = HeapKeeper()
    node = Node()
    keeper.tend()
    ref = weakref.ref(node)

    del node

    assert ref() is None


def test_a_frozen_garbage_cycle_waits_for_the_reclaim() -> None:
    keeper = HeapKeeper()
    first, second = Node(), Node()
    first.other, second.other = second, first
    keeper.tend()
    ref = weakref.ref(first)
    del first, second

    gc.collect()  # CPython's own full collection does not see frozen objects
    assert ref() is not None

    freed = keeper.reclaim()

    assert ref() is None
    assert freed >= 2
    assert keeper.reclaimed_objects >= freed


def test_reclaims_run_once_per_interval() -> None:
    now = [1000.0]
    keeper = HeapKeeper(reclaim_every=600, clock=lambda: now[0])

    keeper.tend()  # the first step collects and freezes the start-up heap
    now[0] += 599
    keeper.tend()
    assert keeper.reclaims == 1

    now[0] += 1
    keeper.tend()
    assert keeper.reclaims == 2
    assert keeper.last_reclaim_at == 1600.0


def test_later_reclaims_wait_for_an_idle_server() -> None:
    now, idle = [1000.0], [False]
    keeper = HeapKeeper(reclaim_every=600, clock=lambda: now[0], is_idle=lambda: idle[0])

    keeper.tend()  # start-up: nobody is connected yet
    assert keeper.reclaims == 1
    now[0] += 3600
    keeper.tend()
    assert keeper.reclaims == 1  # an hour later, but people are there: no pause
    idle[0] = True
    keeper.tend()
    assert keeper.reclaims == 2
    keeper.reclaim_every = 0  # 0: never again
    now[0] += 3600
    keeper.tend()
    assert keeper.reclaims == 2
