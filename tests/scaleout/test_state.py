"""Shared live counts in a real Redis: workers add up, a dead worker's share is taken back, outages heal."""

from __future__ import annotations

import time

import pytest
import redis

from conference.config import redis_options
from conference.live.state import (
    CONNECTIONS_KEY,
    ConnectionRegistry,
    SharedConnectionCounter,
    SharedCounts,
    SocketIdentity,
    presence_key,
)

pytestmark = pytest.mark.redis
ROOM = "lobby:test"


def worker(url: str, ttl: float = 15) -> tuple[SharedCounts, ConnectionRegistry, SharedConnectionCounter]:
    shared = SharedCounts(redis.Redis.from_url(url, **redis_options()), ttl=ttl)
    registry, counter = ConnectionRegistry(shared), SharedConnectionCounter(shared)
    shared.heartbeat()
    return shared, registry, counter


def connect(registry: ConnectionRegistry, counter: SharedConnectionCounter, sid: str, user: int) -> bool:
    if not counter.acquire(user, 2):
        return False
    registry.add(sid, SocketIdentity(user_id=user))
    registry.enter(sid, ROOM, 1)
    return True


def test_presence_and_caps_add_up_over_workers(redis_url: str) -> None:
    _a, reg_a, cnt_a = worker(redis_url)
    _b, reg_b, cnt_b = worker(redis_url)
    assert connect(reg_a, cnt_a, "a1", 7) and connect(reg_b, cnt_b, "b1", 7) and connect(reg_b, cnt_b, "b2", 8)
    assert reg_a.online_count(ROOM) == 2 and sorted(reg_a.online_users(ROOM)) == [7, 8]
    assert not cnt_a.acquire(7, 2)  # the cap of 2 is reached over both workers
    reg_b.remove("b1")
    cnt_b.release(7)
    assert reg_a.online_count(ROOM) == 2  # user 7 is still there through worker a
    reg_a.remove("a1")
    cnt_a.release(7)
    assert reg_b.online_users(ROOM) == [8]
    assert cnt_a.acquire(7, 2)


def test_share_of_a_dead_worker_is_taken_back(redis_url: str) -> None:
    _dead, reg_dead, cnt_dead = worker(redis_url, ttl=1)
    alive, reg_alive, _cnt = worker(redis_url, ttl=1)
    connect(reg_dead, cnt_dead, "d1", 5)
    client = redis.Redis.from_url(redis_url)
    assert client.hget(presence_key(ROOM), "5") == b"1" and client.hget(CONNECTIONS_KEY, "5") == b"1"
    time.sleep(2.1)  # the dead worker sends no heartbeat (as after kill -9)
    alive.heartbeat()
    assert client.hget(presence_key(ROOM), "5") is None and client.hget(CONNECTIONS_KEY, "5") is None
    assert reg_alive.online_count(ROOM) == 0


def test_lost_redis_state_is_republished(redis_url: str) -> None:
    shared, registry, counter = worker(redis_url)
    connect(registry, counter, "s1", 3)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # as after a Redis restart without persistence
    shared.heartbeat()
    assert client.hget(presence_key(ROOM), "3") == b"1" and client.hget(CONNECTIONS_KEY, "3") == b"1"
    assert registry.online_count(ROOM) == 1


def test_unreachable_redis_falls_back_to_this_process(redis_url: str) -> None:
    shared = SharedCounts(redis.Redis.from_url("redis://127.0.0.1:1/0", **redis_options()))
    registry, counter = ConnectionRegistry(shared), SharedConnectionCounter(shared)
    shared.heartbeat()
    assert counter.acquire(1, 1) and not counter.acquire(1, 1)  # the cap holds per process
    registry.add("x", SocketIdentity(user_id=1))
    registry.enter("x", ROOM, 1)
    assert registry.online_count(ROOM) == 1 and shared.stale
