"""Configuration from the environment, with development defaults; TestConfig for the suite."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings read from the environment when the class is instantiated."""

    TESTING = False

    def __init__(self) -> None:
        self.ENV = os.environ.get("FOOTFALL_ENV", "development")
        self.VAR_DIR = Path(os.environ.get("FOOTFALL_VAR_DIR", BASE_DIR / "var"))
        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        self.REDIS_EMBEDDED_PORT = _env_int("REDIS_EMBEDDED_PORT", 6390)
        # Pooled connections per process; a request holds at most one at a time.
        self.REDIS_MAX_CONNECTIONS = _env_int("REDIS_MAX_CONNECTIONS", 256)
        # Money writes (coupon issue, redemption and voids, drop wins) are acknowledged only once
        # on this many replicas (Redis WAIT, at most REDIS_WAIT_TIMEOUT_MS); 0 = do not wait.
        self.REDIS_WAIT_REPLICAS = _env_int("REDIS_WAIT_REPLICAS", 0)
        self.REDIS_WAIT_TIMEOUT_MS = _env_int("REDIS_WAIT_TIMEOUT_MS", 200)
        self.HOST = os.environ.get("FOOTFALL_HOST", "127.0.0.1")
        self.PORT = _env_int("FOOTFALL_PORT", 5000)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or None
        self.TOKEN_TTL_S = _env_int("TOKEN_TTL_S", 12 * 3600)
        self.LOGIN_MAX_ATTEMPTS = _env_int("LOGIN_MAX_ATTEMPTS", 5)
        self.LOGIN_WINDOW_S = _env_int("LOGIN_WINDOW_S", 300)
        self.LOGIN_IP_MAX_ATTEMPTS = _env_int("LOGIN_IP_MAX_ATTEMPTS", 50)
        self.SIGNUP_IP_MAX = _env_int("SIGNUP_IP_MAX", 20)
        self.SIGNUP_WINDOW_S = _env_int("SIGNUP_WINDOW_S", 3600)
        # Proxies in front of the app that append to X-Forwarded-For (and set -Proto): 0 = none,
        # the socket's peer is the client and forwarded headers are ignored (README "Security").
        self.TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)
        self.PASSWORD_HASH_TIME_COST = _env_int("PASSWORD_HASH_TIME_COST", 3)
        self.PASSWORD_HASH_MEMORY_KIB = _env_int("PASSWORD_HASH_MEMORY_KIB", 65536)
        self.RETRY_AFTER_S = _env_int("RETRY_AFTER_S", 2)
        self.MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
        self.LOG_REQUESTS = _env_bool("LOG_REQUESTS", True)
        self.METRICS_ENABLED = _env_bool("METRICS_ENABLED", True)
        self.BACKGROUND_TASKS = _env_bool("BACKGROUND_TASKS", True)
        self.SOCKETIO_ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "gevent")
        # Fan-out between processes goes through Redis pub/sub on the same server.
        self.SOCKETIO_MESSAGE_QUEUE = _env_bool("SOCKETIO_MESSAGE_QUEUE", True)
        self.CORS_ORIGINS = os.environ.get("CORS_ORIGINS", "*")
        # Bytes per websocket message / polling request; longer closes the connection (an
        # event over 16 KB inside it is refused with an error ack, see docs/events.md).
        self.SOCKET_MAX_PAYLOAD = _env_int("SOCKET_MAX_PAYLOAD", 1024 * 1024)
        # Bytes per second a websocket client may send (after a burst of two messages);
        # a faster sender is not read until it is back within the rate (TCP backpressure).
        self.SOCKET_MAX_RATE = _env_int("SOCKET_MAX_RATE", 256 * 1024)
        # Redis connections for publishing to the Socket.IO queue, per process.
        self.SOCKETIO_PUBLISH_CONNECTIONS = _env_int("SOCKETIO_PUBLISH_CONNECTIONS", 16)
        # Cluster mode: the queue's shard channels (SPUBLISH), spread over the masters.
        self.SOCKETIO_QUEUE_SHARDS = _env_int("SOCKETIO_QUEUE_SHARDS", 24)
        # Geofence tunables (see README "Geofencing rules").
        self.GEOFENCE_DWELL_S = _env_int("GEOFENCE_DWELL_S", 120)
        self.GEOFENCE_MAX_ACCURACY_M = _env_float("GEOFENCE_MAX_ACCURACY_M", 150.0)
        self.GEOFENCE_MIN_OVERLAP = _env_float("GEOFENCE_MIN_OVERLAP", 0.75)
        self.GEOFENCE_EXIT_CONFIRM_S = _env_int("GEOFENCE_EXIT_CONFIRM_S", 60)
        # How long a process trusts its fence index before reading the catalog version again
        # (its own catalog writes are seen at once); another process's change shows within it.
        self.GEO_CATALOG_CHECK_MS = _env_int("GEO_CATALOG_CHECK_MS", 1000)
        # Partitions of the geofence event stream and the pending-exit index (by shopper).
        # Every process of a deployment must use the same value (see docs/scaling.md).
        self.GEO_EVENT_PARTITIONS = _env_int("GEO_EVENT_PARTITIONS", 16)
        # A store's fence contains its point or lies within this many metres of it.
        self.FENCE_MAX_OFFSET_M = _env_float("FENCE_MAX_OFFSET_M", 500.0)
        self.SPOOF_MAX_SPEED_MPS = _env_float("SPOOF_MAX_SPEED_MPS", 50.0)
        self.SPOOF_JUMP_M = _env_float("SPOOF_JUMP_M", 10_000.0)
        self.SPOOF_JUMP_WINDOW_S = _env_int("SPOOF_JUMP_WINDOW_S", 600)
        self.FIX_RETENTION_S = _env_int("FIX_RETENTION_S", 24 * 3600)
        self.FIX_MAX_FUTURE_S = _env_int("FIX_MAX_FUTURE_S", 300)
        # Coupons (see README "Promotions"). Signing keys: "kid:secret,kid2:secret2", the first
        # signs, all verify (rotation). Unset: one key derived from SECRET_KEY.
        self.COUPON_SIGNING_KEYS = os.environ.get("COUPON_SIGNING_KEYS") or None
        self.COUPON_VOID_WINDOW_S = _env_int("COUPON_VOID_WINDOW_S", 7 * 86_400)
        self.COUPON_INVALID_MAX = _env_int("COUPON_INVALID_MAX", 10)
        self.COUPON_INVALID_WINDOW_S = _env_int("COUPON_INVALID_WINDOW_S", 600)
        self.PROMO_CLAIM_IDLE_MS = _env_int("PROMO_CLAIM_IDLE_MS", 60_000)
        # Outgoing webhooks (see docs/webhooks.md). http:// URLs and non-public addresses are
        # refused unless allowed here (WEBHOOK_ALLOW_NETS: comma-separated CIDR networks).
        self.WEBHOOK_ALLOW_HTTP = _env_bool("WEBHOOK_ALLOW_HTTP", False)
        self.WEBHOOK_ALLOW_NETS = os.environ.get("WEBHOOK_ALLOW_NETS", "")
        self.WEBHOOK_TIMEOUT_S = _env_float("WEBHOOK_TIMEOUT_S", 15.0)
        self.WEBHOOK_CONCURRENCY = _env_int("WEBHOOK_CONCURRENCY", 64)
        # Delivery queue partitions; every process of a deployment must use the same value.
        self.WEBHOOK_PARTITIONS = _env_int("WEBHOOK_PARTITIONS", 8)
        self.WEBHOOK_CLAIM_IDLE_MS = _env_int("WEBHOOK_CLAIM_IDLE_MS", 60_000)
        self.WEBHOOK_DISABLE_AFTER_S = _env_int("WEBHOOK_DISABLE_AFTER_S", 5 * 86_400)
        self.WEBHOOK_LOG_MAX = _env_int("WEBHOOK_LOG_MAX", 10_000)
        self.WEBHOOK_POLL_MS = _env_int("WEBHOOK_POLL_MS", 100)
        # The audit log of marketers' and admins' changes keeps this many newest entries.
        self.AUDIT_MAX_ENTRIES = _env_int("AUDIT_MAX_ENTRIES", 100_000)
        # The consoles' maps: the tile URL template ({s}, {z}, {x}, {y}) and its attribution. An
        # empty MAP_TILE_URL draws stores and fences on a plain background (no tile requests).
        self.MAP_TILE_URL = os.environ.get(
            "MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
        )
        self.MAP_TILE_ATTRIBUTION = os.environ.get(
            "MAP_TILE_ATTRIBUTION",
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
            " contributors",
        )
        self.MAP_TILE_MAX_ZOOM = _env_int("MAP_TILE_MAX_ZOOM", 19)
        # The catch game (see README "Catch game").
        self.GAME_VISIBLE_RADIUS_M = _env_float("GAME_VISIBLE_RADIUS_M", 200.0)
        self.GAME_INTERACTION_RADIUS_M = _env_float("GAME_INTERACTION_RADIUS_M", 80.0)
        self.GAME_FIX_MAX_AGE_S = _env_float("GAME_FIX_MAX_AGE_S", 30.0)
        self.GAME_COOLDOWN_S = _env_float("GAME_COOLDOWN_S", 10.0)
        self.GAME_DAILY_CAP = _env_int("GAME_DAILY_CAP", 500)
        self.GAME_SPEED_LOCK_KMH = _env_float("GAME_SPEED_LOCK_KMH", 30.0)
        self.GAME_MIN_TRUST = _env_int("GAME_MIN_TRUST", 50)
        self.GAME_TIMEZONE = os.environ.get("GAME_TIMEZONE", "Asia/Shanghai")
        # Live rooms: a connection counts this long after its process last refreshed it.
        self.LIVE_PRESENCE_TTL_S = _env_float("LIVE_PRESENCE_TTL_S", 30.0)
        # ... and a process's viewers stop counting this long after it last said it is alive.
        self.LIVE_PROCESS_TTL_S = _env_float("LIVE_PROCESS_TTL_S", 5.0)
        # The console's live funnel: a watched campaign's snapshot is pushed at most this often.
        self.FUNNEL_PUSH_S = _env_float("FUNNEL_PUSH_S", 2.0)
        # ... with this many stores (by visits, then coupons) in its per-store part.
        self.FUNNEL_TOP_STORES = _env_int("FUNNEL_TOP_STORES", 50)

    @property
    def production(self) -> bool:
        """Tell whether this configuration runs in production mode."""
        return self.ENV == "production"

    def finalize(self) -> None:
        """Check the settings and fill in what development mode may generate."""
        if not 0 < self.FIX_RETENTION_S <= 24 * 3600:
            raise RuntimeError("FIX_RETENTION_S must be between 1 and 86400 seconds (24 h)")
        if not 0.1 <= self.FUNNEL_PUSH_S <= 3600:
            raise RuntimeError("FUNNEL_PUSH_S must be between 0.1 and 3600 seconds")
        if not 1 <= self.FUNNEL_TOP_STORES <= 5000:
            raise RuntimeError("FUNNEL_TOP_STORES must be between 1 and 5000")
        if not 1 <= self.SOCKETIO_QUEUE_SHARDS <= 1024:
            raise RuntimeError("SOCKETIO_QUEUE_SHARDS must be between 1 and 1024")
        if self.AUDIT_MAX_ENTRIES < 1:
            raise RuntimeError("AUDIT_MAX_ENTRIES must be at least 1")
        if not 0 <= self.TRUSTED_PROXY_HOPS <= 10:
            raise RuntimeError("TRUSTED_PROXY_HOPS must be between 0 and 10")
        if not 0.0 < self.GEOFENCE_MIN_OVERLAP <= 1.0:
            raise RuntimeError("GEOFENCE_MIN_OVERLAP must be in (0, 1]")
        if not 0 <= self.GEO_CATALOG_CHECK_MS <= 60_000:
            raise RuntimeError("GEO_CATALOG_CHECK_MS must be between 0 and 60000")
        if not 1 <= self.GEO_EVENT_PARTITIONS <= 256:
            raise RuntimeError("GEO_EVENT_PARTITIONS must be between 1 and 256")
        self._check_webhooks()
        if self.COUPON_SIGNING_KEYS:
            from promotions.codes import parse_keys

            try:
                parse_keys(self.COUPON_SIGNING_KEYS)
            except ValueError as exc:
                raise RuntimeError(str(exc)) from None
        if self.SECRET_KEY:
            if self.production and len(self.SECRET_KEY) < 32:
                raise RuntimeError("SECRET_KEY must be at least 32 characters in production")
            return
        if self.production:
            raise RuntimeError(
                "SECRET_KEY is not set. In production (FOOTFALL_ENV=production) the secret key "
                "must come from the environment: export SECRET_KEY=$(python -c "
                "'import secrets; print(secrets.token_urlsafe(48))')"
            )
        self.SECRET_KEY = _dev_secret_key(self.VAR_DIR)

    def _check_webhooks(self) -> None:
        import ipaddress

        if not 1 <= self.WEBHOOK_PARTITIONS <= 256:
            raise RuntimeError("WEBHOOK_PARTITIONS must be between 1 and 256")
        if not 1 <= self.WEBHOOK_CONCURRENCY <= 1024:
            raise RuntimeError("WEBHOOK_CONCURRENCY must be between 1 and 1024")
        if not 0 < self.WEBHOOK_TIMEOUT_S <= 60:
            raise RuntimeError("WEBHOOK_TIMEOUT_S must be in (0, 60]")
        if self.WEBHOOK_CLAIM_IDLE_MS < 1000 * self.WEBHOOK_TIMEOUT_S:
            raise RuntimeError("WEBHOOK_CLAIM_IDLE_MS must be longer than WEBHOOK_TIMEOUT_S")
        for net in self.webhook_allow_nets():
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise RuntimeError(f"WEBHOOK_ALLOW_NETS: {net!r} is not a network") from None

    def webhook_allow_nets(self) -> list[str]:
        """Return the networks webhooks may reach although they are not public."""
        return [n.strip() for n in (self.WEBHOOK_ALLOW_NETS or "").split(",") if n.strip()]

    def webhook_subject_key(self) -> bytes:
        """Return the key of the opaque shopper ids webhooks carry, derived from SECRET_KEY."""
        return hmac.new(
            self.SECRET_KEY.encode(), b"footfall webhook subjects", hashlib.sha256
        ).digest()

    def coupon_keys(self) -> list[tuple[str, bytes]]:
        """Return the coupon signing keys: configured ones, or one derived from SECRET_KEY."""
        from promotions.codes import parse_keys

        if self.COUPON_SIGNING_KEYS:
            return parse_keys(self.COUPON_SIGNING_KEYS)
        derived = hmac.new(
            self.SECRET_KEY.encode(), b"footfall coupon signing key", hashlib.sha256
        ).hexdigest()
        return [("k0", derived.encode())]

    def game_reference_key(self) -> bytes:
        """Return the key of the game's opaque spawn references, derived from SECRET_KEY."""
        return hmac.new(
            self.SECRET_KEY.encode(), b"footfall game spawn references", hashlib.sha256
        ).digest()

    def as_flask_mapping(self) -> dict:
        """Return the upper-case settings as a plain mapping for app.config."""
        names = {name for name in dir(type(self)) if name.isupper()} | set(vars(self))
        return {name: getattr(self, name) for name in names if name.isupper()}


def _dev_secret_key(var_dir: Path) -> str:
    """Read the development secret key under var/, creating it on first use."""
    path = Path(var_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


class TestConfig(Config):
    """Settings for the test suite: a throwaway Redis URL is set by the fixture."""

    TESTING = True
    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, **overrides) -> None:
        super().__init__()
        self.ENV = "testing"
        self.SECRET_KEY = "test-secret-key-" + "x" * 32
        # Fast hashing keeps the suite quick; production uses the argon2 defaults above.
        self.PASSWORD_HASH_TIME_COST = 1
        self.PASSWORD_HASH_MEMORY_KIB = 1024
        self.LOG_REQUESTS = False
        self.BACKGROUND_TASKS = False
        # The Flask-SocketIO test client runs in-process and refuses a message queue;
        # cross-process behaviour is tested against real server processes instead.
        self.SOCKETIO_ASYNC_MODE = "threading"
        self.SOCKETIO_MESSAGE_QUEUE = False
        # Tests deliver webhooks to receivers on this machine.
        self.WEBHOOK_ALLOW_HTTP = True
        self.WEBHOOK_ALLOW_NETS = "127.0.0.0/8"
        for key, value in overrides.items():
            setattr(self, key, value)
