"""Rooms indexed by client: a disconnect leaves the client's own rooms instead of testing every room.

python-socketio's `BaseManager.basic_disconnect` finds a client's rooms by testing every room of the
namespace for the client. Every client has a room of its own (named by its sid), so with 10,000 clients each
disconnect tests 10,000 rooms, about 1 ms of the event loop: a reconnect storm of 2,000 (the venue's network
drops) spent 16 % of the workers' time there, and 10,000 clients closing at the end of the day held the loop
for half a second. Here the manager keeps, per client, the rooms it is in (kept in step by its own
`basic_enter_room` and `basic_leave_room`), and a disconnect leaves exactly those.

Seam (private data): the manager's `rooms` (`rooms[namespace][room][sid] = eio_sid`), `callbacks`,
`pending_connect` and `pending_disconnect`, which `basic_disconnect` clears as python-socketio 5.x does. Off
(python-socketio's own scan) when the library is outside the tested range or a name is gone.
tests/serving/test_room_index.py compares the indexed manager with python-socketio's own after every step
of random joins, leaves, room closes and disconnects.
"""

from __future__ import annotations

from typing import Any

from conference.serving import fence

SEAM = "indexed rooms (python-socketio)"


def index_rooms(manager: Any) -> bool:
    """Give `manager` (a python-socketio `Manager` or `RedisManager`, before its first client) a per-client
    index of rooms; False (and one log line) if the seam stays off."""
    if not fence.allows(SEAM, ("python-socketio",),
                        [(manager, name) for name in ("rooms", "callbacks", "pending_connect", "pending_disconnect",
                                                      "basic_enter_room", "basic_leave_room", "basic_disconnect")],
                        fallback="a disconnect tests every room"):
        return False
    rooms_of: dict[tuple[Any, str], dict[Any, None]] = {}  # (namespace, sid) -> its rooms, in the order entered
    enter, leave = manager.basic_enter_room, manager.basic_leave_room

    def basic_enter_room(sid: str, namespace: Any, room: Any, eio_sid: str | None = None) -> None:
        enter(sid, namespace, room, eio_sid=eio_sid)  # raises (and nothing is noted) if the client may not
        rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(sid: str, namespace: Any, room: Any) -> None:
        leave(sid, namespace, room)
        rooms = rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del rooms_of[(namespace, sid)]

    def basic_disconnect(sid: str, namespace: Any, **kwargs: Any) -> None:
        # As python-socketio 5.x's BaseManager.basic_disconnect, with the rooms taken from the index.
        if namespace not in manager.rooms:
            return
        for room in list(rooms_of.get((namespace, sid), ())):
            basic_leave_room(sid, namespace, room)
        rooms_of.pop((namespace, sid), None)
        manager.callbacks.pop(sid, None)
        for pending in (manager.pending_connect, manager.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    manager.basic_enter_room = basic_enter_room
    manager.basic_leave_room = basic_leave_room
    manager.basic_disconnect = basic_disconnect
    manager.indexed_rooms = rooms_of  # tests and health: how many clients the index holds
    return True
