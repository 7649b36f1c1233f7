"""Stream addresses -> what the session page embeds: checked hosts and ids, https only, one mapping per provider."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask_babel import lazy_gettext as _l

#: YouTube video ids are 11 characters of the URL-safe base64 alphabet.
YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "youtube-nocookie.com",
                           "www.youtube-nocookie.com"})
VIMEO_ID = re.compile(r"^[0-9]{1,12}$")
VIMEO_HOSTS = frozenset({"vimeo.com", "www.vimeo.com", "player.vimeo.com"})
#: PeerTube: a UUID or the short base58 id of PeerTube 3+ (any instance: it is federated software).
PEERTUBE_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
VIDEO_FILE = re.compile(r"\.(m3u8|mp4|webm)$", re.IGNORECASE)


class StreamAddressError(ValueError):
    """The address does not fit its kind of stream; `message` says why, for the organiser."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Player:
    """How the page shows a stream: `mode` "frame" (third-party player behind consent), "video" (HLS or a video
    file, also behind consent: it is fetched from a third party too) or "link" (a meeting room in a new tab)."""

    mode: str
    src: str
    provider: str
    is_hls: bool = False


def _split(url: str) -> tuple[str, list[str], dict[str, list[str]]]:
    if not isinstance(url, str) or not url.startswith("https://") or any(c in url for c in " \t\r\n\"'<>\\"):
        raise StreamAddressError(str(_l("The stream address must start with https://.")))
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.port not in (None, 443) or not HOST.match(host):
        raise StreamAddressError(str(_l("The stream address has no valid host name.")))
    return host, [p for p in parts.path.split("/") if p], parse_qs(parts.query)


def _checked_id(video: str | None, pattern: re.Pattern[str], message: Any) -> str:
    """The video id taken from the address, if it has the provider's form; else `message` for the organiser."""
    if not video or not pattern.match(video):
        raise StreamAddressError(str(message))
    return video


def _youtube(url: str) -> Player:
    host, path, query = _split(url)
    if host not in YOUTUBE_HOSTS:
        raise StreamAddressError(str(_l("A YouTube address must be on youtube.com, youtu.be or "
                                        "youtube-nocookie.com.")))
    video = None
    if host == "youtu.be" and len(path) == 1:
        video = path[0]
    elif path == ["watch"]:
        video = (query.get("v") or [""])[0]
    elif len(path) == 2 and path[0] in ("embed", "live", "shorts"):
        video = path[1]
    video = _checked_id(video, YOUTUBE_ID, _l("This is not the address of a YouTube video or live stream (for "
                                              "example https://www.youtube.com/watch?v=… or https://youtu.be/…)."))
    return Player("frame", f"https://www.youtube-nocookie.com/embed/{video}", "YouTube")


def _vimeo(url: str) -> Player:
    host, path, _query = _split(url)
    if host not in VIMEO_HOSTS:
        raise StreamAddressError(str(_l("A Vimeo address must be on vimeo.com.")))
    if host == "player.vimeo.com" and len(path) == 2 and path[0] == "video" and VIMEO_ID.match(path[1]):
        return Player("frame", f"https://player.vimeo.com/video/{path[1]}", "Vimeo")
    if len(path) == 1 and VIMEO_ID.match(path[0]):
        return Player("frame", f"https://player.vimeo.com/video/{path[0]}", "Vimeo")
    if len(path) in (2, 3) and path[0] == "event" and VIMEO_ID.match(path[1]) and path[2:] in ([], ["embed"]):
        return Player("frame", f"https://vimeo.com/event/{path[1]}/embed", "Vimeo")
    raise StreamAddressError(str(_l("This is not the address of a Vimeo video or event (for example "
                                    "https://vimeo.com/123456789).")))


def _peertube(url: str) -> Player:
    host, path, _query = _split(url)
    video = None
    if len(path) == 2 and path[0] == "w":
        video = path[1]
    elif len(path) == 3 and path[0] == "videos" and path[1] in ("watch", "embed"):
        video = path[2]
    video = _checked_id(video, PEERTUBE_ID, _l("This is not the address of a PeerTube video (for example "
                                               "https://peertube.example/w/… or …/videos/watch/…)."))
    return Player("frame", f"https://{host}/videos/embed/{video}", "PeerTube")


def _video(url: str) -> Player:
    host, path, _query = _split(url)
    if not path or not VIDEO_FILE.search(path[-1]):
        raise StreamAddressError(str(_l("A video address must end in .m3u8 (HLS), .mp4 or .webm.")))
    return Player("video", url, host, is_hls=path[-1].lower().endswith(".m3u8"))


def _frame(url: str) -> Player:
    host, _path, _query = _split(url)
    return Player("frame", url, host)


def _link(url: str) -> Player:
    host, _path, _query = _split(url)
    return Player("link", url, host)


_MAPPERS = {"youtube": _youtube, "vimeo": _vimeo, "peertube": _peertube, "hls": _video, "iframe": _frame,
            "jitsi": _link, "bigbluebutton": _link}


def player_for(kind: str, url: str) -> Player:
    """The player for a room's stream; raises StreamAddressError with a message for the organiser."""
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        raise StreamAddressError(str(_l("Unknown kind of stream.")))
    return mapper(url)


def player_or_none(kind: str | None, url: str | None) -> Player | None:
    """For pages: a stored address that no longer passes (saved before the checks) shows no player."""
    if not kind or not url:
        return None
    try:
        return player_for(kind, url)
    except StreamAddressError:
        return None


def hls_origins(rooms: Iterable[Any]) -> list[str]:
    """Origins of the HLS streams among `rooms`: hls.js fetches their playlists and segments from the page."""
    origins = []
    for room in rooms:
        player = player_or_none(room.stream_kind, room.stream_url)
        if player is not None and player.is_hls:
            parts = urlsplit(player.src)
            origins.append(f"https://{parts.netloc.lower()}")
    return origins
