"""Development server with demo data: gevent + websockets, embedded Redis unless REDIS_URL is set.

python run.py            # serve, loading the demo data first if it is not there
python run.py --no-demo  # serve without touching data
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import signal  # noqa: E402

import gevent  # noqa: E402

from app import create_app  # noqa: E402
from app.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo  # noqa: E402
from config import Config  # noqa: E402
from core.fdlimit import raise_open_file_limit  # noqa: E402


def main() -> None:
    """Start the server (and print what a newcomer needs to try it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true", help="do not load demo data")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    raise_open_file_limit()  # one descriptor per open websocket
    config = Config()
    app = create_app(config)
    host = args.host or config.HOST
    port = args.port or config.PORT
    base = f"http://{host}:{port}"
    print(f"Footfall on {base}   (Redis: {app.config['REDIS_URL']})")
    if not args.no_demo:
        report = seed_demo(app)
        app.extensions["geo"].warm()  # the fence cache holds the demo stores before any fix
        print(
            f"demo data: {report['stores_total']} stores "
            f"({report['stores_written']} written now); staff serve {report['staff_store']}"
        )
        campaign = report["campaign"]
        print(
            f"demo campaign {campaign['id']} '{campaign['name']}' is {campaign['status']} on "
            f"{len(campaign['targets']['stores'])} East Nanjing Road stores "
            "(walk in: a coupon; catch creatures: /api/game/spawns)"
        )
        stream = report["stream"]
        print(
            f"demo stream {stream['id']} '{stream['title']}' is {stream['status']} with "
            f"{len(stream['products'])} products (host: host@demo.footfall.test)"
        )
        print(f"demo accounts (password {DEMO_PASSWORD!r}):")
        for email, role, _ in DEMO_ACCOUNTS:
            print(f"  {role:9} {email}")
    print(f"shopper app   {base}/app/ (shopper@demo.footfall.test, or sign up)")
    print(f"API docs      {base}/api/swagger   (OpenAPI: {base}/api/openapi.json)")
    print(f"shopper demo  {base}/static/index.html")
    print(f"consoles      {base}/console/ (marketer, admin)   {base}/till/ (staff)")
    print(f"host studio   {base}/studio/ (host@demo.footfall.test)")
    print(f"health        {base}/healthz  {base}/readyz  {base}/metrics")
    socketio = app.extensions["socketio"]

    def stop_serving() -> None:
        # SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, kill): serve_forever returns, and
        # the atexit hook shuts the embedded Redis down cleanly instead of leaving it orphaned.
        # Handled in a greenlet of their own: Python's default SIGINT handler raises
        # KeyboardInterrupt in whichever greenlet runs at that instant, and a background loop
        # that catches it (a reconnecting listener) would keep the server serving.
        if socketio.wsgi_server is not None:
            socketio.wsgi_server.stop(timeout=5)

    gevent.signal_handler(signal.SIGTERM, stop_serving)
    gevent.signal_handler(signal.SIGINT, stop_serving)
    socketio.run(app, host=host, port=port, use_reloader=False, log_output=False)


if __name__ == "__main__":
    main()
