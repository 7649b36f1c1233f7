"""The indexed rooms seam (`conference.serving.room_index`) keeps python-socketio's room records exactly as the
library's own manager does: the same random joins, leaves, room closes and disconnects are applied to an
indexed and a plain manager, and after every step both hold the same rooms, callbacks and pending lists."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import socketio

from conference.serving import fence
from conference.serving.room_index import SEAM, index_rooms


def manager_of_a_server() -> Any:
    server = socketio.Server(async_mode="threading")
    counter = itertools.count()
    server.eio.generate_id = lambda: f"sid{next(counter)}"  # the same sids in both servers
    return server.manager, server


def records(manager: Any) -> tuple[Any, ...]:
    rooms = {namespace: {room: dict(members) for room, members in by_room.items()}
             for namespace, by_room in manager.rooms.items()}
    callbacks = {sid: {ack: callback for ack, callback in acks.items() if ack != 0}  # 0: the counter itself
                 for sid, acks in manager.callbacks.items()}
    return rooms, callbacks, {k: list(v) for k, v in manager.pending_connect.items()}, \
        {k: list(v) for k, v in manager.pending_disconnect.items()}


def rooms_by_client(manager: Any) -> dict[tuple[str, str], set[Any]]:
    found: dict[tuple[str, str], set[Any]] = {}
    for namespace, by_room in manager.rooms.items():
        for room, members in by_room.items():
            for sid in members:
                found.setdefault((namespace, sid), set()).add(room)
    return found


@pytest.mark.parametrize("seed", range(6))
def test_the_indexed_manager_keeps_the_same_rooms_as_python_socketio(seed: int) -> None:
    plain, plain_server = manager_of_a_server()
    indexed, indexed_server = manager_of_a_server()
    plain.set_server(plain_server)
    indexed.set_server(indexed_server)
    assert index_rooms(indexed)
    rng = random.Random(seed)
    namespaces, room_names = ["/", "/admin"], ["lobby:a", "session:1", "session:2", "event:a"]
    eio_sids = itertools.count()
    connected: list[tuple[str, str]] = []  # (sid, namespace)
    for _step in range(1500):
        action = rng.random()
        if action < 0.25 or not connected:
            namespace = rng.choice(namespaces)
            eio_sid = f"eio{next(eio_sids)}"
            sids = {plain.connect(eio_sid, namespace), indexed.connect(eio_sid, namespace)}
            assert len(sids) == 1
            connected.append((sids.pop(), namespace))
        elif action < 0.30:  # the same Engine.IO connection again: refused by both
            sid, namespace = rng.choice(connected)
            eio_sid = plain.eio_sid_from_sid(sid, namespace)
            assert plain.pre_connect(eio_sid, namespace) is None and indexed.pre_connect(eio_sid, namespace) is None
        elif action < 0.35:  # an emit that waits for the client's ack (cleared on disconnect)
            sid, namespace = rng.choice(connected)
            assert plain._generate_ack_id(sid, print) == indexed._generate_ack_id(sid, print)
        elif action < 0.60:
            sid, namespace = rng.choice(connected)
            room = rng.choice(room_names)
            plain.enter_room(sid, namespace, room)
            indexed.enter_room(sid, namespace, room)
        elif action < 0.75:
            sid, namespace = rng.choice(connected)
            room = rng.choice(room_names)
            plain.leave_room(sid, namespace, room)
            indexed.leave_room(sid, namespace, room)
        elif action < 0.78:
            namespace, room = rng.choice(namespaces), rng.choice(room_names)
            plain.close_room(room, namespace)
            indexed.close_room(room, namespace)
        else:
            sid, namespace = connected.pop(rng.randrange(len(connected)))
            if rng.random() < 0.5:  # the server's own order: marked as leaving, then gone
                plain.pre_disconnect(sid, namespace)
                indexed.pre_disconnect(sid, namespace)
            plain.disconnect(sid, namespace)
            indexed.disconnect(sid, namespace)
            assert not indexed.is_connected(sid, namespace)
        assert records(indexed) == records(plain)
        assert {key: set(rooms) for key, rooms in indexed.indexed_rooms.items()} == rooms_by_client(indexed)
    for sid, namespace in connected:
        plain.disconnect(sid, namespace)
        indexed.disconnect(sid, namespace)
    assert records(indexed) == records(plain) == ({}, {}, {}, {})
    assert indexed.indexed_rooms == {}


def test_outside_the_tested_range_the_manager_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    manager, _server = manager_of_a_server()
    monkeypatch.setattr(fence, "release", lambda distribution: (0, 0))
    assert index_rooms(manager) is False
    assert "basic_disconnect" not in vars(manager) and not hasattr(manager, "indexed_rooms")
    assert SEAM in fence.switched_off
