"""Serving: the async server's set-up, the worker supervisor and every seam with a library's private names.

Each seam checks at start-up that the library's version is in the tested range and that the names it needs
are there (`fence`); otherwise it stays off with one log line and the library's public path serves:

- `unmasking`: eventlet's websocket unmasking as one XOR (off: eventlet's byte loop);
- `direct_writes`: a broadcast framed once and written to idle websockets (off: Engine.IO's queues);
- `writer`: one writer per gevent websocket, every frame whole under one lock (off: long-polling only);
- `limits`: websocket message limits (off: long-polling only), the reader's stop after a refusal;
- `heap`: freezing the long-lived heap (off: the interpreter's own collection schedule);
- `multipart`: the upload receiver's fast path past werkzeug's decoder (off: the decoder reads everything);
- `redis_queue`: quick reconnects and the relay channel on python-socketio's `RedisManager`.
"""
