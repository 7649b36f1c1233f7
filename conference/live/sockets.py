"""Socket.IO handlers of the live layer (chat, Q&A, presence, moderation, announcements)."""

from __future__ import annotations

from flask_socketio import SocketIO


def register(socketio: SocketIO) -> None:
    """Attach the live layer's handlers to `socketio`; called once by the factory."""
