"""A released session's times: its end is its latest slot's end, whatever order the slots come in."""

from __future__ import annotations

from datetime import UTC, datetime

from conference.agenda.schedule import PRoom, PSession, PSlot

ROOM_A = PRoom(1, "A", 0, None, None, "room-a")
ROOM_B = PRoom(2, "B", 1, None, None, "room-b")


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, 1, hour, minute, tzinfo=UTC)


def _session(*slots: PSlot) -> PSession:
    return PSession(id=7, guid="g", title="Talk", abstract="", kind="talk", language="en", track=None,
                    cancelled=False, speakers=[], slots=list(slots))


def test_session_end_is_latest_slot_end_when_first_slot_ends_last() -> None:
    session = _session(PSlot(1, ROOM_A, _at(9), _at(12)), PSlot(2, ROOM_B, _at(10), _at(11)))
    assert session.start_at == _at(9)
    assert session.end_at == _at(12)
    assert session.has_ended(_at(11, 30)) is False
    assert session.has_ended(_at(12)) is True


def test_session_without_slots_has_no_end_and_never_ends() -> None:
    session = _session()
    assert session.end_at is None
    assert session.has_ended(_at(23)) is False
