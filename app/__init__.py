"""The web layer: create_app() builds a Flask (flask-openapi3) app from small named steps."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from types import MethodType

from argon2 import PasswordHasher
from flask import current_app, g, request
from flask.sessions import SessionInterface
from flask_openapi3 import Info, OpenAPI
from flask_socketio import SocketIO
from werkzeug.exceptions import BadRequest
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from core.audit import AuditLog
from core.clock import Clock
from core.durability import Durability
from core.errors import DomainError, Forbidden
from core.throttle import Throttle

from .auth import Accounts, TokenSigner, authorize, declared_roles, defers_session_check
from .errors import is_streamed, read_streamed_body, register_errorhandlers, validation_response
from .extensions import make_redis
from .observability import configure_logging, register_observability
from .schemas import ErrorEnvelope
from .webpath import SocketIOPathDispatch

log = logging.getLogger(__name__)

# Framework endpoints that are public by nature: static files and the API docs.
FRAMEWORK_PUBLIC = ("static",)
FRAMEWORK_PUBLIC_PREFIXES = ("openapi.", "swagger.")
# Bodies views parse as forms (after their own checks: see read_streamed_body).
FORM_MIMETYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# Methods whose JSON body is checked before the view runs.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_framework_public(endpoint: str) -> bool:
    """Tell whether an endpoint is framework-owned and public (static files, API docs)."""
    return endpoint in FRAMEWORK_PUBLIC or endpoint.startswith(FRAMEWORK_PUBLIC_PREFIXES)


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "footfall-v1"},
}


def create_app(config: Config | None = None, *, clock: Clock | None = None) -> OpenAPI:
    """Build the application from a configuration object."""
    config = config if config is not None else Config()
    config.finalize()
    app = OpenAPI(
        __name__,
        info=Info(
            title="Footfall API",
            version="0.1.0",
            description="Shopper-companion backend: stores, geofences, location fixes, "
            "geofence events, campaigns, coupons, the wallet and redemption. Every operation "
            "lists the roles that may call it.",
        ),
        security_schemes=SECURITY_SCHEMES,
        doc_prefix="/api",
        doc_url="/openapi.json",
        validation_error_status=422,
        # Validation errors answer the envelope (app/errors.py), not pydantic's error list.
        validation_error_model=ErrorEnvelope,
        validation_error_callback=validation_response,
        static_folder="../static",
        static_url_path="/static",
    )
    app.config.from_mapping(config.as_flask_mapping())
    app.json.sort_keys = False
    configure_logging(config.LOG_LEVEL)
    register_extensions(app, config, clock or Clock())
    register_http_path(app)
    register_proxy(app, config)
    register_observability(app)
    register_security(app)
    register_blueprints(app)
    register_namespaces(app)
    register_errorhandlers(app)
    register_commands(app)
    register_background(app)
    return app


def register_extensions(app: OpenAPI, config: Config, clock: Clock) -> None:
    """Connect Redis (starting the embedded server when REDIS_URL is unset), Socket.IO, domain."""
    from game import Game, GameSettings
    from geo.engine import EngineSettings, LocationEngine
    from geo.stores import StoreCatalog
    from live import Live
    from promotions import CouponCodec, Promotions, RedeemSettings

    from .sinks import (
        SocketCouponNotifier,
        SocketEventSink,
        SocketGameNotifier,
        queue_manager,
    )
    from .sockets.packets import FootfallPacket
    from .sockets.wsinput import BoundedWebSocketInput

    url = config.REDIS_URL
    if not url:
        from .redis_supervisor import ensure_embedded

        server = ensure_embedded(config.VAR_DIR, config.REDIS_EMBEDDED_PORT)
        app.extensions["embedded_redis"] = server
        url = server.url
        app.config["REDIS_URL"] = url
    r = make_redis(url, max_connections=config.REDIS_MAX_CONNECTIONS)
    app.extensions["redis"] = r
    app.extensions["clock"] = clock
    app.extensions["audit"] = AuditLog(r, clock, max_entries=config.AUDIT_MAX_ENTRIES)
    socketio = SocketIO()
    options = {}
    if app.config.get("SOCKETIO_MESSAGE_QUEUE", True):
        # Fan-out between processes through Redis pub/sub, with a listener that notices a
        # dead connection and re-subscribes quickly (see RedisQueueManager); on a cluster URL,
        # sharded pub/sub spread over the masters (see ShardedQueueManager).
        queue = queue_manager(
            url,
            shards=config.SOCKETIO_QUEUE_SHARDS,
            publish_connections=config.SOCKETIO_PUBLISH_CONNECTIONS,
        )
        options["client_manager"] = queue
        app.extensions["socketio_queue"] = queue
    socketio.init_app(
        app,
        **options,
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE", "gevent"),
        cors_allowed_origins=app.config.get("CORS_ORIGINS", "*"),
        # Per websocket message or polling request (a longer one closes the connection);
        # events themselves are bounded lower, with an error ack (see FootfallPacket).
        max_http_buffer_size=config.SOCKET_MAX_PAYLOAD,
        serializer=FootfallPacket,
        ping_interval=25,
        ping_timeout=20,
    )
    app.wsgi_app = BoundedWebSocketInput(
        app.wsgi_app, config.SOCKET_MAX_PAYLOAD, rate_bytes_s=config.SOCKET_MAX_RATE
    )
    hasher = PasswordHasher(
        time_cost=config.PASSWORD_HASH_TIME_COST, memory_cost=config.PASSWORD_HASH_MEMORY_KIB
    )
    app.extensions["throttle"] = throttle = Throttle(r)
    app.extensions["accounts"] = Accounts(
        r,
        TokenSigner(config.SECRET_KEY),
        clock,
        token_ttl_s=config.TOKEN_TTL_S,
        hasher=hasher,
        login_max=config.LOGIN_MAX_ATTEMPTS,
        login_window_s=config.LOGIN_WINDOW_S,
        login_ip_max=config.LOGIN_IP_MAX_ATTEMPTS,
        throttle=throttle,
    )
    catalog = StoreCatalog(r, clock, fence_max_offset_m=config.FENCE_MAX_OFFSET_M)
    app.extensions["stores"] = catalog
    app.extensions["geo"] = LocationEngine(
        r, catalog, clock, EngineSettings.from_config(config), sink=SocketEventSink(socketio)
    )
    app.extensions["promotions"] = Promotions(
        r,
        clock,
        catalog,
        CouponCodec(config.coupon_keys()),
        notifier=SocketCouponNotifier(socketio),
        settings=RedeemSettings(
            void_window_s=config.COUPON_VOID_WINDOW_S,
            invalid_max=config.COUPON_INVALID_MAX,
            invalid_window_s=config.COUPON_INVALID_WINDOW_S,
        ),
        event_partitions=config.GEO_EVENT_PARTITIONS,
        durability=Durability(
            r,
            config.REDIS_WAIT_REPLICAS,
            config.REDIS_WAIT_TIMEOUT_MS,
            retry_after_s=config.RETRY_AFTER_S,
        ),
    )
    app.extensions["game"] = Game(
        r,
        clock,
        app.extensions["promotions"],
        app.extensions["geo"],
        GameSettings(
            visible_radius_m=config.GAME_VISIBLE_RADIUS_M,
            interaction_radius_m=config.GAME_INTERACTION_RADIUS_M,
            fix_max_age_s=config.GAME_FIX_MAX_AGE_S,
            cooldown_s=config.GAME_COOLDOWN_S,
            daily_cap=config.GAME_DAILY_CAP,
            speed_lock_mps=config.GAME_SPEED_LOCK_KMH / 3.6,
            min_trust=config.GAME_MIN_TRUST,
            timezone=config.GAME_TIMEZONE,
            reference_key=config.game_reference_key(),
        ),
        notifier=SocketGameNotifier(socketio),
    )
    hooks = make_webhooks(app, r, clock, config)
    live = Live(
        r,
        clock,
        app.extensions["promotions"],
        app.extensions["accounts"].role_of,
        process_id=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        presence_ttl_s=config.LIVE_PRESENCE_TTL_S,
        process_ttl_s=config.LIVE_PROCESS_TTL_S,
        events=hooks.live,
    )
    app.extensions["live"] = live
    app.extensions["streams"] = live.streams


def make_webhooks(app: OpenAPI, r, clock: Clock, config: Config):
    """The outgoing webhooks: endpoints, the dispatcher, and what live events look like."""
    from webhooks import DispatchSettings, OutboundPolicy, Webhooks

    from .webhook_events import live_lookup

    def count(outcome) -> None:
        metrics = app.extensions.get("metrics")
        if metrics is not None:
            metrics.webhook_deliveries.labels(outcome.result).inc()

    hooks = Webhooks(
        r,
        clock,
        OutboundPolicy(
            allow_http=config.WEBHOOK_ALLOW_HTTP,
            allow_nets=config.webhook_allow_nets(),
            timeout_s=config.WEBHOOK_TIMEOUT_S,
            pool_size=config.WEBHOOK_CONCURRENCY,
        ),
        config.webhook_subject_key(),
        DispatchSettings(
            partitions=config.WEBHOOK_PARTITIONS,
            geo_partitions=config.GEO_EVENT_PARTITIONS,
            concurrency=config.WEBHOOK_CONCURRENCY,
            claim_idle_ms=config.WEBHOOK_CLAIM_IDLE_MS,
            disable_after_s=config.WEBHOOK_DISABLE_AFTER_S,
            log_max=config.WEBHOOK_LOG_MAX,
        ),
        live_lookup=lambda kind, key: live_lookup(app, kind, key),
        on_outcome=count,
    )
    app.extensions["webhooks"] = hooks
    return hooks


def register_http_path(app: OpenAPI) -> None:
    """Send requests outside the Socket.IO path straight to Flask (see app/webpath.py)."""
    app.wsgi_app = SocketIOPathDispatch(app.wsgi_app, MethodType(type(app).wsgi_app, app))


def register_proxy(app: OpenAPI, config: Config) -> None:
    """Trust X-Forwarded-For/-Proto from TRUSTED_PROXY_HOPS proxies (0: trust none).

    The one layer that rewrites the client address: gunicorn is told to trust no forwarding
    headers (gunicorn.conf.py). Wrapped after Socket.IO's middleware, so websockets see it too.
    """
    hops = config.TRUSTED_PROXY_HOPS
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


class NoCookieSession(SessionInterface):
    """No cookie session: every caller sends a bearer token (never a cookie, docs/frontend.md).

    Flask's default opens a signed cookie session on every request (a new signing serializer,
    the cookie header parsed: ~16 µs of a ~250 µs /healthz, bench/README.md) that nothing in
    this app reads. Flask then gives each request its null session, which is empty and refuses
    writes; Socket.IO keeps its own per-connection session (Flask-SocketIO's manage_session).
    """

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response) -> None:
        return None


def register_security(app: OpenAPI) -> None:
    """Authenticate the bearer token and enforce the roles every endpoint declares."""
    app.session_interface = NoCookieSession()
    # endpoint -> (declared roles, checks its session itself); views are fixed once serving.
    policies: dict[str, tuple[frozenset[str] | None, bool]] = {}

    def policy(endpoint: str) -> tuple[frozenset[str] | None, bool]:
        found = policies.get(endpoint)
        if found is None:
            view = app.view_functions.get(endpoint)
            found = policies[endpoint] = (declared_roles(view), defers_session_check(view))
        return found

    def authenticate(endpoint: str | None, method: str, environ: dict) -> None:
        if endpoint is None:
            return  # routing raises 404/405 next
        g.principal = None
        if is_framework_public(endpoint):
            return
        if method == "OPTIONS":
            return  # Flask's automatic answer to a CORS preflight carries no data
        allowed, defers = policy(endpoint)
        if allowed is None:
            raise Forbidden("this endpoint declares no roles", code="undeclared_roles")
        principal = None
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise DomainError(
                    "Authorization must be 'Bearer <token>'", code="invalid_token", status=401
                )
            # A view that checks the session inside its own first Redis round trip (the hot
            # location endpoints) gets the principal from the signature alone here.
            principal = g.principal = current_app.extensions["accounts"].authenticate(
                token.strip(), check_session=not defers
            )
        authorize(principal, allowed)

    def parse_json() -> None:
        # A streamed (chunked) body is read whole and bounded here. Form bodies are not: a
        # view reads an upload only after it has checked the caller's rights to the object.
        streamed = is_streamed()
        if streamed and request.mimetype not in FORM_MIMETYPES:
            read_streamed_body()
        # A body that claims to be JSON but is not is a 400 naming the body, not a 422 later.
        if request.is_json and (request.content_length or (streamed and request.get_data())):
            try:
                request.get_json()
            except (BadRequest, RecursionError):
                raise DomainError(
                    "request body is not valid JSON", code="malformed_json", field="body"
                ) from None

    @app.before_request
    def _authorize() -> None:
        # One hook, the environ read once: this runs on every request (bench/README.md).
        environ = request.environ
        method = environ.get("REQUEST_METHOD", "GET").upper()
        authenticate(request.endpoint, method, environ)
        if method in BODY_METHODS:
            parse_json()


def register_blueprints(app: OpenAPI) -> None:
    """Mount the REST blueprints under /api, and the consoles' pages (not part of the API)."""
    from .blueprints import (
        audit,
        auth,
        campaigns,
        game,
        location,
        ops,
        pages,
        redemptions,
        stores,
        streams,
        wallet,
        webhooks,
    )

    for module in (
        ops,
        auth,
        stores,
        location,
        campaigns,
        wallet,
        redemptions,
        game,
        streams,
        audit,
        webhooks,
    ):
        app.register_api(module.bp)
    app.register_blueprint(pages.bp)


def register_namespaces(app: OpenAPI) -> None:
    """Register the Socket.IO namespaces."""
    from .sockets.base import socket_error
    from .sockets.live import HostNamespace, LiveNamespace
    from .sockets.marketer import MarketerNamespace
    from .sockets.shopper import ShopperNamespace

    socketio = app.extensions["socketio"]
    # One error handler for every namespace: the envelope as the ack and an `error` event.
    socketio.on_error_default(socket_error)
    socketio.on_namespace(ShopperNamespace("/shopper"))
    viewers = LiveNamespace("/live")
    app.extensions["live_namespace"] = viewers  # the ticker refreshes its viewers' presence
    socketio.on_namespace(viewers)
    queue = app.extensions.get("socketio_queue")
    if queue is not None:
        # Each live offset once to this process's viewers, and what they missed while the
        # queue was away once it is back (see app/sockets/redelivery.py).
        queue.delivery_filters.append(viewers.deliveries.allow)
        queue.resubscribed.append(
            lambda: viewers.deliveries.catch_up(socketio, app.extensions["live"].history)
        )
    socketio.on_namespace(HostNamespace("/host"))
    marketers = MarketerNamespace("/marketer")
    app.extensions["marketer_namespace"] = marketers  # the funnel ticker refreshes its watches
    socketio.on_namespace(marketers)


def register_commands(app: OpenAPI) -> None:
    """Add the flask CLI commands."""
    from .cli import register

    register(app)


def register_background(app: OpenAPI) -> None:
    """Start the sweepers, the promotions consumer and the webhook senders in server processes
    (not in tests, and not in `flask` commands: a bulk import must not start delivering)."""
    if not app.config.get("BACKGROUND_TASKS"):
        return
    import click

    if click.get_current_context(silent=True) is not None:
        return
    from .background import start_background_tasks

    start_background_tasks(app)
