"""Gunicorn settings, read from the working directory: `gunicorn wsgi:app` (or `-b HOST:PORT`).

Socket.IO needs the gevent worker (long-lived websockets, one greenlet per connection); scale out
with more processes behind the load balancer, which Redis fans events out between.
"""

import os

wsgi_app = "wsgi:app"
# gevent, answering the requests gunicorn itself refuses with the JSON envelope.
worker_class = "gunicorn_worker.EnvelopeGeventWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Every open websocket takes one of these for its whole life; at the limit the worker stops
# accepting, and new connections (health checks too) wait unserved. Gunicorn's default of 1,000
# is far below what a process holds (README: Production serving); keep the load balancer's
# per-process connection cap below this so health checks always find a slot.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or "20000")
# The app must be built inside the worker, after gevent patched it, never in the master.
preload_app = False
# Open websockets keep a worker busy until this runs out on SIGTERM; clients reconnect to
# another process, so a long drain only delays deploys.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
keepalive = 5
# Gunicorn >= 25.1 opens a control socket at one fixed path per user ($XDG_RUNTIME_DIR or
# ~/.gunicorn/gunicorn.ctl): several instances on one host would unlink each other's socket.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "") == ""
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
# Client addresses behind a load balancer: the app's ProxyFix (TRUSTED_PROXY_HOPS) is the one
# layer that reads X-Forwarded-For/-Proto. Gunicorn trusts no peer's forwarding headers (its
# default trusts 127.0.0.1 for the scheme) and speaks no PROXY protocol, which would rewrite
# REMOTE_ADDR a second time.
forwarded_allow_ips = ""
proxy_protocol = "off"


def on_starting(server):
    """Raise the open-file limit in the master before it forks workers (they inherit it)."""
    from core.fdlimit import FD_RESERVE, raise_open_file_limit

    soft, hard = raise_open_file_limit()
    if soft < worker_connections + FD_RESERVE:
        server.log.warning(
            "open-file limit %s (hard %s) is below worker_connections %s + %s: raise the hard "
            "limit (ulimit -Hn, LimitNOFILE=, docker --ulimit nofile=) or lower "
            "GUNICORN_WORKER_CONNECTIONS",
            soft,
            hard,
            worker_connections,
            FD_RESERVE,
        )


# The cyclic garbage collector, tuned for a process that holds thousands of websockets (each one
# some 250 tracked objects: greenlets, queues, the websocket's state). With Python's defaults
# (700, 10, 10) a young collection ran every ~700 net allocations and a full one, scanning every
# object of every connection, paused a worker with 2,000 viewers for 0.33-0.41 s (bench/README.md,
# live). The application's own objects, built once before the first request, are frozen out of
# every scan; young collections run 14 times less often (each still scans at most 10,000
# objects, a few ms); a full collection still follows every 100 young ones and Python's own rule
# (only once a quarter more objects survived than at the last one), so cyclic garbage of closed
# connections is still collected.
GC_THRESHOLDS = (10_000, 10, 10)


def post_worker_init(worker):
    """Freeze the loaded app's objects out of the collector's scans and raise its thresholds."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
