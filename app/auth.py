"""Accounts, signed bearer tokens, login rate limits, and the role check every endpoint declares.

Tokens are `v1.<payload>.<signature>`: the payload (user id, role, store, session id, expiry) is
HMAC-SHA256 signed with a key derived from SECRET_KEY. A token is valid while its signature
checks, it has not expired and its session key still exists in Redis: logout deletes that key.

The session key carries the account's shopper hash tag (geo.keys.shopper_tag), so that the
location engine's commit script checks it in the same script that writes a fix (one round trip
per fix, and a revoked session's fix is never written). Tokens issued before that (no "sk" in
the payload) name the older key, `auth:session:<id>`, until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from core.throttle import Rule, Throttle
from geo.keys import shopper_tag

# A guest watches live streams without an account: it may join rooms but not write in them.
ROLES = ("shopper", "staff", "marketer", "host", "admin", "guest")
PUBLIC = "public"
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    role: str
    store_id: str | None
    session_id: str
    session_key: str = ""  # the Redis key that exists while the session is open


def roles(*allowed: str) -> Callable:
    """Declare which roles may call an endpoint or socket event (the default is deny)."""
    for role in allowed:
        if role not in ROLES and role != PUBLIC:
            raise ValueError(f"unknown role {role!r}")

    def decorator(func: Callable) -> Callable:
        func._footfall_roles = frozenset(allowed)
        return func

    return decorator


def defer_session_check(func: Callable) -> Callable:
    """Mark a view that checks the session itself, inside its first Redis round trip."""
    func._footfall_defer_session = True
    return func


def defers_session_check(func: Callable | None) -> bool:
    """Tell whether a view checks the session itself."""
    return bool(getattr(func, "_footfall_defer_session", False))


def declared_roles(func: Callable | None) -> frozenset[str] | None:
    """Return the roles a view or handler declared, or None when it declared none."""
    return getattr(func, "_footfall_roles", None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Sign and verify bearer tokens with a key derived from the app secret."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"footfall-token-v1:" + secret_key.encode()).digest()

    def sign(self, payload: dict) -> str:
        """Return a token carrying the payload."""
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        sig = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"v1.{body}.{sig}"

    def verify(self, token: str, now: float) -> dict:
        """Return the payload of a well-signed, unexpired token, or raise Unauthorized."""
        # A token is base64url and dots: anything else (non-ASCII bytes from a header or a
        # query string) is malformed, and must not reach compare_digest, which refuses
        # non-ASCII str with a TypeError.
        if not isinstance(token, str) or not token.isascii():
            raise Unauthorized("malformed token", code="invalid_token")
        try:
            version, body, sig = token.split(".")
        except ValueError:
            raise Unauthorized("malformed token", code="invalid_token") from None
        if version != "v1":
            raise Unauthorized("unknown token version", code="invalid_token")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, sig):
            raise Unauthorized("bad token signature", code="invalid_token")
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            raise Unauthorized("malformed token", code="invalid_token") from None
        if not isinstance(payload, dict) or payload.get("exp", 0) <= now:
            raise Unauthorized("token expired", code="token_expired")
        return payload


def _user_key(user_id: str) -> str:
    return f"user:{{u:{user_id}}}"


def _session_key(session_id: str, user_id: str | None = None) -> str:
    """The key of an open session: under the account's shopper hash tag (tokens carrying
    "sk"), or the older untagged key (tokens issued before)."""
    if user_id is None:
        return f"auth:session:{session_id}"
    return f"auth:session:{shopper_tag(user_id)}:{session_id}"


def _sockets_key(session_id: str) -> str:
    return f"auth:sockets:{session_id}"


def _email_key(email: str) -> str:
    return f"user:email:{email}"


class Accounts:
    """Account storage, password checks, sessions and login throttling on Redis."""

    def __init__(
        self,
        r: redis.Redis,
        signer: TokenSigner,
        clock,
        *,
        token_ttl_s: int,
        hasher: PasswordHasher,
        login_max: int,
        login_window_s: int,
        login_ip_max: int,
        throttle: Throttle | None = None,
    ) -> None:
        self.r = r
        self.signer = signer
        self.clock = clock
        self.token_ttl_s = token_ttl_s
        self.hasher = hasher
        self.login_max = login_max
        self.login_window_s = login_window_s
        self.login_ip_max = login_ip_max
        self.throttle = throttle or Throttle(r)
        self.per_account = Rule(
            "login-account", login_max, login_window_s, "too many login attempts for this account"
        )
        self.per_address = Rule(
            "login-address",
            login_ip_max,
            login_window_s,
            "too many login attempts from this address",
        )
        # Hashing a dummy on unknown accounts keeps login time independent of existence.
        self._dummy_hash = hasher.hash(secrets.token_hex(8))

    # -- accounts ------------------------------------------------------------------------
    def create_user(
        self,
        email: str,
        password: str,
        role: str,
        *,
        display_name: str | None = None,
        store_id: str | None = None,
    ) -> dict:
        """Create an account; emails are unique, staff are bound to one store."""
        email = check_new_user(email, password, role, store_id)
        return self.add_user(self.user_record(email, password, role, display_name, store_id))

    def user_record(
        self,
        email: str,
        password: str,
        role: str,
        display_name: str | None = None,
        store_id: str | None = None,
    ) -> dict:
        """Return a new account's stored record (a fresh id, the password hashed) for
        add_user; the fields must have passed check_new_user."""
        return {
            "id": secrets.token_hex(8),
            "email": email,
            "role": role,
            "display_name": display_name or email.split("@")[0],
            "store_id": store_id or "",
            "password": self.hasher.hash(password),
            "created_at": f"{self.clock.now():.3f}",
        }

    def add_user(self, record: dict) -> dict:
        """Store a record from user_record; refused if its email is taken."""
        # The record goes first: if the email is taken, the orphan record is removed again,
        # and an index entry never points at a record that does not exist.
        self.r.hset(_user_key(record["id"]), mapping=record)
        if not self.r.set(_email_key(record["email"]), record["id"], nx=True):
            self.r.delete(_user_key(record["id"]))
            raise Conflict("an account with this email exists", code="email_taken", field="email")
        return public_user(record)

    def create_guest(self) -> dict:
        """Open a session for a new guest (no email, no password; gone when the token is)."""
        user_id = "g-" + secrets.token_hex(7)
        record = {
            "id": user_id,
            "email": "",
            "role": "guest",
            "display_name": f"Guest {user_id[2:6]}",
            "store_id": "",
            "created_at": f"{self.clock.now():.3f}",
        }
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(_user_key(user_id), mapping=record)
        pipe.expire(_user_key(user_id), self.token_ttl_s)
        pipe.execute()
        return self.open_session(record)

    def get_user(self, user_id: str) -> dict:
        """Return an account's public fields."""
        record = self.r.hgetall(_user_key(user_id))
        if not record:
            raise NotFound("no such account", code="user_not_found")
        return public_user(record)

    def role_of(self, user_id: str) -> str | None:
        """Return an account's role, or None if there is no such account."""
        return self.r.hget(_user_key(user_id), "role")

    def display_names(self, user_ids: list[str]) -> dict[str, str]:
        """Return each account's display name ('' when it has none or is gone)."""
        pipe = self.r.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hget(_user_key(user_id), "display_name")
        return {uid: name or "" for uid, name in zip(user_ids, pipe.execute(), strict=True)}

    def find_by_email(self, email: str) -> dict | None:
        """Return the full record for an email, or None."""
        user_id = self.r.get(_email_key(normalize_email(email)))
        if not user_id:
            return None
        return self.r.hgetall(_user_key(user_id)) or None

    def delete_user(self, user_id: str) -> list[tuple[str, str]]:
        """Remove the account record, its email index and every session.

        Returns the (namespace, socket id) pairs still connected with those sessions, for the
        caller to disconnect.
        """
        record = self.r.hgetall(_user_key(user_id))
        if not record:
            return []
        sessions = self.r.smembers(f"auth:user_sessions:{{u:{user_id}}}")
        pipe = self.r.pipeline(transaction=False)
        # One key per DEL: a cluster pipeline refuses a DEL of several keys.
        pipe.delete(_user_key(user_id))
        pipe.delete(f"auth:user_sessions:{{u:{user_id}}}")
        pipe.delete(_email_key(record["email"]))
        for sid in sessions:
            pipe.delete(_session_key(sid, user_id))
            pipe.delete(_session_key(sid))  # a session opened before the tagged keys
        pipe.execute()
        return self._take_sockets(sessions)

    # -- sessions ------------------------------------------------------------------------
    def login(self, email: str, password: str, ip: str) -> dict:
        """Check the password (throttled per account and per IP) and open a session."""
        email = normalize_email(email, field="email")
        self._throttle(email, ip)
        record = self.find_by_email(email)
        if record is None:
            self._verify_quietly(self._dummy_hash, password)
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        if not self._verify_quietly(record["password"], password):
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        if self.hasher.check_needs_rehash(record["password"]):
            self.r.hset(_user_key(record["id"]), "password", self.hasher.hash(password))
        self.throttle.reset(self.per_account, email)
        return self.open_session(record)

    def _verify_quietly(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _throttle(self, email: str, ip: str) -> None:
        """Count this attempt; refuse when the account or the address made too many recently."""
        self.throttle.hit(self.per_account, email)
        self.throttle.hit(self.per_address, ip)

    def open_session(self, record: dict) -> dict:
        """Issue a token for an account and remember its session for revocation."""
        now = self.clock.now()
        session_id = secrets.token_urlsafe(16)
        payload = {
            "u": record["id"],
            "r": record["role"],
            "s": record.get("store_id") or None,
            "sid": session_id,
            "iat": int(now),
            "exp": int(now) + self.token_ttl_s,
            "sk": 1,  # the session key is under the account's tag (_session_key)
        }
        pipe = self.r.pipeline(transaction=False)
        pipe.set(_session_key(session_id, record["id"]), record["id"], ex=self.token_ttl_s)
        pipe.sadd(f"auth:user_sessions:{{u:{record['id']}}}", session_id)
        pipe.expire(f"auth:user_sessions:{{u:{record['id']}}}", self.token_ttl_s)
        pipe.execute()
        return {
            "token": self.signer.sign(payload),
            "token_type": "Bearer",
            "expires_at": payload["exp"],
            "user": public_user(record),
        }

    def authenticate(self, token: str, *, check_session: bool = True) -> Principal:
        """Return the principal of a valid token whose session is still open.

        With check_session=False only the signature and expiry are checked here, and the
        caller must check session_guard() in its own first round trip.
        """
        payload = self.signer.verify(token, self.clock.now())
        session_id = payload.get("sid")
        if not session_id:
            raise Unauthorized("malformed token", code="invalid_token")
        user_id = payload["u"]
        key = _session_key(session_id, user_id if payload.get("sk") == 1 else None)
        if check_session and not self.r.exists(key):
            raise Unauthorized("session ended, sign in again", code="session_revoked")
        return Principal(user_id, payload["r"], payload.get("s"), session_id, key)

    @staticmethod
    def session_guard(principal: Principal) -> tuple[str, Unauthorized]:
        """Return the key that must exist for the principal's session, and the error if not.

        For a token with a tagged session key, the location engine checks it inside its commit
        script (geo.keys.under_shopper_tag); for an older token, in its first round trip.
        """
        return (
            principal.session_key or _session_key(principal.session_id),
            Unauthorized("session ended, sign in again", code="session_revoked"),
        )

    def logout(self, principal: Principal) -> list[tuple[str, str]]:
        """Revoke the caller's session; return its sockets (namespace, id) to disconnect."""
        pipe = self.r.pipeline(transaction=False)
        pipe.delete(principal.session_key or _session_key(principal.session_id))
        pipe.srem(f"auth:user_sessions:{{u:{principal.user_id}}}", principal.session_id)
        pipe.execute()
        return self._take_sockets([principal.session_id])

    def track_socket(self, principal: Principal, namespace: str, socket_id: str) -> None:
        """Remember a socket opened with a session, so that ending the session closes it."""
        key = _sockets_key(principal.session_id)
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(key, f"{namespace}|{socket_id}")
        pipe.expire(key, self.token_ttl_s)
        pipe.execute()

    def forget_socket(self, principal: Principal, namespace: str, socket_id: str) -> None:
        """Forget a socket that closed."""
        self.r.srem(_sockets_key(principal.session_id), f"{namespace}|{socket_id}")

    def _take_sockets(self, session_ids) -> list[tuple[str, str]]:
        session_ids = list(session_ids)
        if not session_ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.smembers(_sockets_key(session_id))
            pipe.delete(_sockets_key(session_id))
        replies = pipe.execute()
        out = []
        for members in replies[::2]:
            for member in members:
                namespace, _, socket_id = member.partition("|")
                out.append((namespace, socket_id))
        return out


def check_new_user(email: str, password: str, role: str, store_id: str | None) -> str:
    """Check a new account's fields (not whether the email is free); return the email as
    stored (lower case)."""
    email = normalize_email(email)
    if role not in ROLES or role == "guest":  # guests come from create_guest()
        raise ValidationFailed(f"unknown role {role!r}", code="invalid_role", field="role")
    if role == "staff" and not store_id:
        raise ValidationFailed(
            "staff accounts need a store", code="store_required", field="store_id"
        )
    if role != "staff" and store_id:
        raise ValidationFailed(
            "only staff accounts belong to a store", code="store_not_allowed", field="store_id"
        )
    check_password_strength(password)
    return email


def normalize_email(email: str, field: str = "email") -> str:
    """Lower-case and check an email address."""
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email):
        raise ValidationFailed("not a valid email address", code="invalid_email", field=field)
    return email


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short or too long to hash sensibly."""
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationFailed(
            "password needs at least 8 characters", code="weak_password", field="password"
        )
    if len(password) > 256:
        raise ValidationFailed("password is too long", code="invalid_password", field="password")


def public_user(record: dict) -> dict:
    """Return the fields of an account that may be shown to its owner."""
    return {
        "id": record["id"],
        "email": record["email"],
        "role": record["role"],
        "display_name": record.get("display_name") or "",
        "store_id": record.get("store_id") or None,
    }


def authorize(principal: Principal | None, allowed: Iterable[str]) -> None:
    """Raise unless the principal holds one of the allowed roles."""
    allowed = frozenset(allowed)
    if PUBLIC in allowed:
        return
    if principal is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>")
    if principal.role not in allowed:
        raise Forbidden(f"role {principal.role!r} may not do this", code="forbidden_role")
