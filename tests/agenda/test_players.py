"""Stream address -> player: known hosts, validated ids, https only; the organiser hears why an address is refused."""

from __future__ import annotations

import pytest

from conference.agenda.players import Player, StreamAddressError, hls_origins, player_for, player_or_none
from conference.agenda.rooms import create_room
from conference.core.errors import ValidationFailed
from conference.core.security import CONTENT_SECURITY_POLICY, policy_with_connect_origins

NOCOOKIE = "https://www.youtube-nocookie.com/embed/abcDEF12_-x"


@pytest.mark.parametrize(("kind", "url", "expected"), [
    ("youtube", "https://www.youtube.com/watch?v=abcDEF12_-x", Player("frame", NOCOOKIE, "YouTube")),
    ("youtube", "https://www.youtube.com/watch?feature=share&v=abcDEF12_-x", Player("frame", NOCOOKIE, "YouTube")),
    ("youtube", "https://youtu.be/abcDEF12_-x", Player("frame", NOCOOKIE, "YouTube")),
    ("youtube", "https://www.youtube.com/live/abcDEF12_-x?si=x", Player("frame", NOCOOKIE, "YouTube")),
    ("youtube", "https://m.youtube.com/embed/abcDEF12_-x", Player("frame", NOCOOKIE, "YouTube")),
    ("youtube", NOCOOKIE, Player("frame", NOCOOKIE, "YouTube")),
    ("vimeo", "https://vimeo.com/123456789", Player("frame", "https://player.vimeo.com/video/123456789", "Vimeo")),
    ("vimeo", "https://player.vimeo.com/video/42", Player("frame", "https://player.vimeo.com/video/42", "Vimeo")),
    ("vimeo", "https://vimeo.com/event/4242", Player("frame", "https://vimeo.com/event/4242/embed", "Vimeo")),
    ("peertube", "https://tube.example.org/w/9c9de5e8-0a1e-484a-b099-e80766180a6d",
     Player("frame", "https://tube.example.org/videos/embed/9c9de5e8-0a1e-484a-b099-e80766180a6d", "PeerTube")),
    ("peertube", "https://Tube.Example.org/videos/watch/kkGMgK9ZtnKfYAgnEtQxbv",
     Player("frame", "https://tube.example.org/videos/embed/kkGMgK9ZtnKfYAgnEtQxbv", "PeerTube")),
    ("hls", "https://cdn.example.org/live/stage.m3u8",
     Player("video", "https://cdn.example.org/live/stage.m3u8", "cdn.example.org", is_hls=True)),
    ("hls", "https://cdn.example.org/talk.mp4", Player("video", "https://cdn.example.org/talk.mp4", "cdn.example.org")),
    ("jitsi", "https://meet.example.org/raum-b", Player("link", "https://meet.example.org/raum-b", "meet.example.org")),
    ("bigbluebutton", "https://bbb.example.org/b/abc-def",
     Player("link", "https://bbb.example.org/b/abc-def", "bbb.example.org")),
])
def test_player_for_known_address(kind: str, url: str, expected: Player) -> None:
    assert player_for(kind, url) == expected


@pytest.mark.parametrize(("kind", "url", "says"), [
    ("youtube", "http://www.youtube.com/watch?v=abcDEF12_-x", "https://"),
    ("youtube", "https://www.youtube.com.evil.example/watch?v=abcDEF12_-x", "youtube.com"),
    ("youtube", "https://evil.example/embed/abcDEF12_-x", "youtube.com"),
    ("youtube", "https://www.youtube.com/watch?v=short", "YouTube video"),
    ("youtube", "https://www.youtube.com/watch?v=abcDEF12_-x%22", "YouTube video"),
    ("youtube", "https://www.youtube.com/channel/UCabc", "YouTube video"),
    ("youtube", "https://user:pw@www.youtube.com/watch?v=abcDEF12_-x", "host name"),
    ("youtube", "https://www.youtube.com:8443/watch?v=abcDEF12_-x", "host name"),
    ("vimeo", "https://vimeo.com/channels/staffpicks", "Vimeo video"),
    ("vimeo", "https://player.vimeo.com.evil.example/video/1", "vimeo.com"),
    ("peertube", "https://tube.example.org/videos/watch/../../admin", "PeerTube video"),
    ("peertube", "https://tube.example.org/c/channel", "PeerTube video"),
    ("peertube", "https://localhost/w/9c9de5e8-0a1e-484a", "host name"),
    ("hls", "https://cdn.example.org/live/page.html", ".m3u8"),
    ("hls", "javascript:alert(1)//x.m3u8", "https://"),
    ("jitsi", "https://meet.example.org/raum b", "https://"),
    ("jitsi", "data:text/html,<script>", "https://"),
    ("flash", "https://example.org/x.swf", "Unknown kind"),
])
def test_player_for_refuses_with_reason(app, kind: str, url: str, says: str) -> None:
    with app.test_request_context(headers={"Accept-Language": "en"}), pytest.raises(StreamAddressError) as error:
        player_for(kind, url)
    assert says in error.value.message
    with app.test_request_context():
        assert player_or_none(kind, url) is None


def test_create_room_refuses_unknown_video_address_with_message(agenda_world) -> None:
    with pytest.raises(ValidationFailed) as error:
        create_room(agenda_world.event, name="Bühne", stream_kind="youtube",
                    stream_url="https://www.youtube.com/channel/UCabc", actor=None)
    assert (error.value.field, error.value.code) == ("stream_url", "bad_stream_address")
    assert "YouTube" in error.value.message


def test_create_room_keeps_the_organisers_address(agenda_world) -> None:
    room = create_room(agenda_world.event, name="Bühne", stream_kind="vimeo",
                       stream_url="https://vimeo.com/123456789", actor=None)
    assert room.stream_url == "https://vimeo.com/123456789"


def test_hls_origin_allowed_for_fetch_only_on_its_page(agenda_world) -> None:
    rooms = [create_room(agenda_world.event, name=f"R{i}", stream_kind=kind, stream_url=url, actor=None)
             for i, (kind, url) in enumerate([("hls", "https://CDN.example.org/live/a.m3u8"),
                                              ("hls", "https://files.example.org/talk.mp4"),
                                              ("youtube", "https://youtu.be/abcDEF12_-x")])]
    assert hls_origins(rooms) == ["https://cdn.example.org"]
    policy = policy_with_connect_origins(hls_origins(rooms))
    assert "connect-src 'self' https://cdn.example.org;" in policy
    assert policy.replace(" https://cdn.example.org", "") == CONTENT_SECURITY_POLICY
    assert policy_with_connect_origins(["https://x.example; script-src *"]) == CONTENT_SECURITY_POLICY
