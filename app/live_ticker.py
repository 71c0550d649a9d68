"""The live rooms' periodic work, run by every server process.

- Likes: viewers like at any rate; once a second, the total of each live stream that changed is
  broadcast as `likes` — by one process only (a per-stream, per-second claim in Redis), so
  viewers hear one count a second however many processes there are.
- Feedback: every 2 s each live stream's host consoles get `feedback` (again one process).
- Presence: this process says it is alive and refreshes its viewers' connections, so the
  count drops a dead process's viewers within LIVE_PROCESS_TTL_S.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .sockets.live import host_room, viewers_room

log = logging.getLogger(__name__)
FEEDBACK_EVERY_S = 2


def tick(app: Flask, now: float | None = None) -> dict[str, Any]:
    """Do one second's work; return what was sent (for tests and logs)."""
    live = app.extensions["live"]
    r = app.extensions["redis"]
    socketio = app.extensions["socketio"]
    now = app.extensions["clock"].now() if now is None else now
    second = int(now)
    sent: dict[str, Any] = {"likes": {}, "feedback": []}
    namespace = app.extensions.get("live_namespace")
    if namespace is not None:
        # Every second: this process is alive, and so are its viewers' connections.
        principals = namespace.principals
        live.presence.heartbeat(
            [
                (sid, conn, principals[conn].user_id)
                for conn, sid in list(namespace.watching.items())
                if conn in principals
            ]
        )
    for sid in live.streams.live_ids():
        prefix = f"live:{{l:{sid}}}"
        # One process per stream and second does the broadcast (the claim expires by itself).
        if not r.set(f"{prefix}:tick:{second}", "1", nx=True, ex=5):
            continue
        total = live.feedback.totals(sid)["likes"]
        last = r.getset(f"{prefix}:likes_sent", total)
        # A stream nobody has liked yet has nothing to say (no `likes` of 0 at its first tick).
        if int(last or 0) != total:
            offset = live.history.append(sid, "likes", {"total": total})
            socketio.emit(
                "likes", {"total": total, "offset": offset}, to=viewers_room(sid), namespace="/live"
            )
            sent["likes"][sid] = total
        if second % FEEDBACK_EVERY_S == 0:
            snapshot = live.feedback.snapshot(sid, now)
            snapshot["viewers"] = live.presence.count(sid)
            snapshot["poll"] = live.chat.poll_state(sid)
            snapshot["drop"] = live.drops.active(sid)
            snapshot["questions"] = live.chat.top_questions(sid)
            live.feedback.set_viewers(sid, snapshot["viewers"])
            socketio.emit("feedback", snapshot, to=host_room(sid), namespace="/host")
            sent["feedback"].append(sid)
    return sent
