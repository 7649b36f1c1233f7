"""Baseline for bench/chat_load.py: a plain Flask-SocketIO server without database, auth or grouping.

`join` puts the socket into the room, `chat:send` does `emit("chat:message", ..., to=room)`. Same protocol
shapes as the platform, so the load client can run unchanged against both.
Usage: python bench/baseline_server.py --mode eventlet|gevent --port PORT
"""

from __future__ import annotations

import argparse
import itertools
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["eventlet", "gevent"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    else:
        from gevent import monkey

        monkey.patch_all()
    from datetime import UTC, datetime

    from flask import Flask, request
    from flask_socketio import SocketIO, emit, join_room

    app = Flask(__name__)
    socketio = SocketIO(app, async_mode=args.mode, max_http_buffer_size=64 * 1024)
    ids = itertools.count(1)

    @socketio.on("connect")
    def connect(auth: object = None) -> bool:
        return True

    @socketio.on("join")
    def join(data: dict) -> dict:
        join_room(data["room"])
        return {"ok": True, "history": [], "online": 0}

    @socketio.on("chat:send")
    def send(data: dict) -> dict:
        message = {"id": next(ids), "room": data["room"], "text": data["text"], "client_id": data["client_id"],
                   "author": {"id": 0, "name": request.sid, "role": "attendee"},
                   "created_at": datetime.now(UTC).isoformat()}
        emit("chat:message", message, to=data["room"])
        return {"ok": True, "message": message}

    print("baseline ready", flush=True)
    if args.mode == "eventlet":
        import eventlet.wsgi

        eventlet.wsgi.server(eventlet.listen(("127.0.0.1", args.port), backlog=2048), app, log_output=False,
                             max_size=20_000)
    else:
        import socket

        from gevent.pywsgi import WSGIHandler, WSGIServer

        class NoDelayHandler(WSGIHandler):  # as conference/serving/server.py does, so both servers are set up alike
            def __init__(self, sock: object, *rest: object) -> None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
                super().__init__(sock, *rest)

        WSGIServer(("127.0.0.1", args.port), app, log=None, backlog=2048,
                   handler_class=NoDelayHandler).serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
