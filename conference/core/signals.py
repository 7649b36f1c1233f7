"""Signals for reactions that flow against the dependency direction (e.g. auth -> live)."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# sender: the app; kwargs: user_id, login_token (the ended browser login) or None
login_session_ended = _signals.signal("login-session-ended")
# sender: the app; kwargs: user_id, event_id (role changed or membership removed)
membership_changed = _signals.signal("membership-changed")
# sender: the app; kwargs: event_id, release (a new agenda release was published)
agenda_released = _signals.signal("agenda-released")
# sender: the app; kwargs: user_id, token_id
api_token_revoked = _signals.signal("api-token-revoked")
