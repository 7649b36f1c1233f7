"""Production serving: the only module that knows eventlet and gevent.

`prepare_async` must run before Flask, SQLAlchemy or the database driver are imported, so that
sockets, locks and the PostgreSQL driver cooperate with the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

log = logging.getLogger("conference.wsgi")

MAX_CONNECTIONS = 20_000  # eventlet's own default is 1,024 concurrent connections


def prepare_async(mode: str, database_url: str = "") -> None:
    """Monkey-patch the standard library for `mode` and make psycopg2 cooperative."""
    if mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    else:
        return
    if database_url.startswith("postgresql"):
        # psycopg2's wait callback makes its socket waits green (see config.cooperative_database_url).
        if mode == "eventlet":
            import psycogreen.eventlet

            psycogreen.eventlet.patch_psycopg()
        else:
            import psycogreen.gevent

            psycogreen.gevent.patch_psycopg()


def serve(app: Any, *, host: str, port: int, listener: socket.socket | None = None) -> None:
    """Serve `app` with its configured async server until interrupted."""
    from conference.extensions import socketio

    mode = app.config["ASYNC_MODE"]
    log.info("serving on http://%s:%s with %s", host, port, mode)
    if mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        sock = listener or eventlet.listen((host, port), backlog=2048)
        eventlet.wsgi.server(sock, app, max_size=MAX_CONNECTIONS, log_output=False, debug=False,
                             keepalive=True, socket_timeout=None)
    elif mode == "gevent":
        from gevent.pywsgi import WSGIHandler, WSGIServer

        class NoDelayHandler(WSGIHandler):
            """gevent's pywsgi leaves Nagle on, which stalls keep-alive responses by ~40 ms."""

            def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
                with contextlib.suppress(OSError):  # not a TCP socket (e.g. a Unix socket)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().__init__(sock, address, server, rfile)

        server = WSGIServer(listener or (host, port), app, handler_class=NoDelayHandler, log=None,
                            backlog=2048)
        server.serve_forever()
    else:
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False,
                     log_output=False)


def worker_count_default() -> int:
    return int(os.environ.get("CONFERENCE_WORKERS", "1"))
