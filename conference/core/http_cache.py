"""HTTP caching of read answers: strong ETags, Last-Modified, 304s, and who may keep a copy (docs/api.md).

Views mark a 200 answer with `cacheable(...)`; every GET under /api/v1/ counts as marked. After the view, one
hook decides, with everything the request did known:

- `private, no-store` when the caller is someone (a cookie login or a bearer token): personal answers stay
  out of every cache, as before;
- `public, max-age=N` (N = `PUBLIC_MAX_AGE`) for a `shared` answer to an anonymous caller whose session
  nothing wrote to (no Set-Cookie, no flashed message): the exports and the read API are the same bytes for
  every visitor;
- `private, no-cache` otherwise: an anonymous page holds the visitor's CSRF token (the language switch), so
  only the visitor's own browser may keep it, and it asks again each time (a 304 while nothing changed).

The ETag is a hash of the body (the body only ever shows released data: a draft cannot change it) and a
view's own ETag or Cache-Control is kept. Compression (`core.compression`) adds `:br`/`:gzip` to the ETag of
a compressed copy; such a tag sent back in `If-None-Match` matches here already, before anything is
compressed again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, request, session
from flask_login import current_user

from conference.core.security import bearer_token
from conference.settings import get_settings

CODINGS = ("br", "gzip")  # suffixes the compression layer gives the ETag of a compressed copy
VARY = ("Accept-Language", "Cookie")  # the language (header or cookie) and a login change what is shown
_SINCE_SIZE = 4096
_lock = threading.Lock()


@dataclass(frozen=True)
class Policy:
    shared: bool  # the same bytes for every anonymous visitor (no CSRF token, nothing personal)


def cacheable(*, shared: bool) -> None:
    """Called by a view while it answers: its 200 answer gets an ETag and answers conditional requests.

    `shared`: the answer is the same for every anonymous visitor (exports, API), so a shared cache may keep it;
    pages that hold a form token are not.
    """
    g.http_cache = Policy(shared=shared)


def public_max_age() -> int:
    return get_settings().public_max_age


def is_personal() -> bool:
    """A caller who is someone: a bearer token or a cookie login (the answer may show their data)."""
    return bearer_token() is not None or bool(g.get("authenticated_by_token")) or current_user.is_authenticated


def _policy() -> Policy | None:
    policy: Policy | None = g.pop("http_cache", None)
    if policy is None and request.path.startswith("/api/v1/"):
        return Policy(shared=True)
    return policy


def finish(response: Response) -> Response:
    """after_request: Cache-Control, Vary, ETag, Last-Modified and the 304 for a marked 200 answer."""
    policy = _policy()
    if policy is None or request.method not in ("GET", "HEAD") or response.status_code != 200 \
            or response.is_streamed:
        return response
    if policy.shared and response.mimetype == "text/html":
        policy = Policy(shared=False)  # a page (e.g. /api/v1/docs) holds the visitor's CSRF token: never shared
    personal = is_personal()
    if "Cache-Control" not in response.headers:
        if personal:
            response.headers["Cache-Control"] = "private, no-store"
        elif policy.shared and not session.modified and "_flashes" not in session:
            response.headers["Cache-Control"] = f"public, max-age={public_max_age()}"
        else:
            response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(VARY)
    etag, _weak = response.get_etag()
    if etag is None:
        etag = hashlib.sha256(_validated_bytes(response)).hexdigest()[:40]
        response.set_etag(etag)
    if response.last_modified is None:
        response.last_modified = _last_modified(etag)
    matched = _matching_tag(etag)
    if matched is not None:
        response.set_etag(matched)  # the client's own (compressed) copy is the one still current
    response.make_conditional(request)  # in place (it returns the same object)
    return response


def _validated_bytes(response: Response) -> bytes:
    """The body as far as it can change: the CSRF token in a page is signed with the current second, so it is
    replaced by the session's secret behind it (the same for as long as the token stays valid); an older
    copy's token is as good as a new one."""
    body = response.get_data()
    token = g.get("csrf_token")
    if isinstance(token, str) and token:
        body = body.replace(token.encode(), b"csrf") + str(session.get("csrf_token", "")).encode()
    return body


def _matching_tag(etag: str) -> str | None:
    """The tag in If-None-Match that names this body, plain or as a compressed copy (`<etag>:br`)."""
    tags = request.if_none_match
    if not tags or tags.star_tag:
        return None
    for tag in tags.as_set(include_weak=False):
        base, _sep, coding = tag.rpartition(":")
        if tag == etag or (base == etag and coding in CODINGS):
            return tag
    return None


def _last_modified(etag: str) -> datetime:
    """When this process first sent this body for this address.

    A body is a function of more than the release (an event renamed, slides published later), so the
    release time alone could make an If-Modified-Since client keep a stale copy. The first time a body was
    seen is later than the change that made it, so a 304 on If-Modified-Since is not wrong (one case: a
    body that changes and changes back, seen by one worker only in its first form); after a restart it is
    simply later than needed (a 200). The ETag stays the authoritative validator (RFC 9110 13.2.2: a
    client that sends both is judged by If-None-Match alone).
    """
    since: OrderedDict[tuple[str, str], tuple[str, datetime]] = current_app.extensions.setdefault(
        "http_cache_since", OrderedDict())
    key = (request.url_root, request.full_path)
    now = datetime.now(UTC).replace(microsecond=0)
    with _lock:
        seen = since.get(key)
        if seen is None or seen[0] != etag:
            seen = (etag, now)
            since[key] = seen
        since.move_to_end(key)
        while len(since) > _SINCE_SIZE:
            since.popitem(last=False)
    return seen[1]


def register_http_cache(app: Flask) -> None:
    get_settings(app)  # CONFERENCE_PUBLIC_MAX_AGE checked (0 or more seconds) before the first request
    app.after_request(finish)
