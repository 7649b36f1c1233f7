"""The live layer: chat, Q&A, presence, moderation and announcements over Socket.IO.

Where things are (business rules in plain functions that flush; the socket decorator and the routes commit):

- rules: `rooms` (room names, `RoomInfo`), `access` (`Standing`, join/write checks), `inputs` (client input),
  `chat` (the send path, history), `qa`, `reports`, `moderation` (mutes, bans, slow mode), `announcements`,
  `account` (export and erasure), `retention`; `payloads` builds what clients receive.
- transport: `socket_calls` (`socket_event`, `SocketCall`), `sockets` (connect, rooms, registration),
  `socket_chat`, `socket_qa`, `socket_moderation`, `socket_signals` (other domains' signals), `routes` (pages).
- delivery: `broadcast` (`LiveState`, after-commit emits), `fanout` (aggregation, grouped frames), `state`
  (connections, presence, counts shared through Redis), `relay` (several workers).
"""
