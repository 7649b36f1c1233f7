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
# sender: the app; kwargs: event. Receivers return {session_id: [{"title", "url", "type"}]} of published
# attachments (slides) that exports should list; the presentations domain answers it.
session_attachments = _signals.signal("session-attachments")
# sender: the app; kwargs: event_id, session_id (a session started or ended: open pages may update)
session_state_changed = _signals.signal("session-state-changed")
# sender: the app; kwargs: user_id, and either login_hash (that one login session was ended) or keep_login_hash
# (every login session but that one, None: all, was ended and every API token revoked). Hashes, not tokens:
# the receivers compare them with the hash of each open socket's login token.
logins_ended = _signals.signal("logins-ended")
# sender: the app; kwargs: user_id. The owner proved the address (or an operator vouched for it) in the
# current unit of work; receivers act in it (the events domain applies roles that waited for this).
address_verified = _signals.signal("address-verified")
# sender: the app; kwargs: user_id. Each domain answers with {section name: JSON-ready list or dict} of what it
# holds about the account (DSGVO Art. 15/20); `conference.auth.privacy` assembles the download.
account_data = _signals.signal("account-data")
# sender: the app; kwargs: user_id. The account is being deleted in the current unit of work: each domain removes
# or anonymises what it holds, or refuses by raising a `DomainError` (the caller rolls the whole deletion back).
# Files go only after the commit (`after_commit.defer`).
account_erasing = _signals.signal("account-erasing")
# sender: the app; kwargs: user_id. An account was deleted (sent after the commit, relayed to every worker):
# caches that hold its name drop it (the live chat's message payloads).
account_erased = _signals.signal("account-erased")
# sender: the app; kwargs: event_id, user_id. Someone registered for an event in the current unit of work (not
# sent for people who already held a role); receivers act in it (the attendee mails queue the confirmation).
attendee_registered = _signals.signal("attendee-registered")
# sender: the app; kwargs: event_id. Records of the event were deleted by its retention policy (sent after the
# commit, relayed to every worker): caches that hold copies drop them (chat payloads, question panels).
retention_purged = _signals.signal("retention-purged")
# sender: the app; kwargs: presentation_id, session_id, event_id. A slide file was sent to someone (the
# attendance figures count downloads per presentation and day, in memory, written once a minute).
slides_downloaded = _signals.signal("slides-downloaded")
