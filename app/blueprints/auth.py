"""Sign-up, sign-in, sign-out, the caller's account, location consent and erasure."""

from __future__ import annotations

from flask import current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from core.fields import Flag
from core.throttle import Rule
from live.erasure import erase_viewer

from .. import schemas as S
from ..api import endpoint, principal
from ..auth import ROLES
from ..extensions import get_redis

bp = APIBlueprint("auth", __name__, url_prefix="/api", abp_tags=[Tag(name="accounts")])


class SignupBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(default=None, min_length=1, max_length=80)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: Flag = Field(
        description="true to allow location fixes, false to withdraw "
        "(withdrawing deletes raw fixes and fence states)"
    )


def _accounts():
    return current_app.extensions["accounts"]


def close_sockets(sockets: list[tuple[str, str]]) -> None:
    """Disconnect sockets of ended sessions, on whichever process holds them."""
    server = current_app.extensions["socketio"].server
    for namespace, socket_id in sockets:
        # Through the Redis message queue the process that holds the socket closes it.
        server.disconnect(socket_id, namespace=namespace)


def _client_ip() -> str:
    # The socket's peer, or the client a trusted proxy names (TRUSTED_PROXY_HOPS, ProxyFix).
    return request.remote_addr or "unknown"


def _throttle_signup(kind: str = "signup") -> None:
    """Count one new session from this address (sign-up or guest) against its window."""
    config = current_app.config
    noun = "sign-ups" if kind == "signup" else "guest sessions"
    rule = Rule(
        f"{kind}-address",
        config["SIGNUP_IP_MAX"],
        config["SIGNUP_WINDOW_S"],
        f"too many {noun} from this address",
    )
    current_app.extensions["accounts"].throttle.hit(rule, _client_ip())


@endpoint(
    bp,
    "post",
    "/auth/signup",
    allow=["public"],
    summary="Create a shopper account",
    responses={201: S.SessionOut},
)
def signup(body: SignupBody):
    _throttle_signup()
    accounts = _accounts()
    user = accounts.create_user(
        body.email, body.password, "shopper", display_name=body.display_name
    )
    session = accounts.open_session(accounts.find_by_email(user["email"]))
    return session, 201


@endpoint(
    bp,
    "post",
    "/auth/guest",
    allow=["public"],
    summary="A guest token: watch live streams without an account (no writing)",
    description="Throttled per client address like sign-ups.",
    responses={201: S.SessionOut},
)
def guest():
    _throttle_signup("guest")
    return _accounts().create_guest(), 201


@endpoint(
    bp,
    "post",
    "/auth/login",
    allow=["public"],
    summary="Sign in and get a bearer token",
    description="Throttled per account and per client address (429 with Retry-After).",
    responses={200: S.SessionOut},
)
def login(body: LoginBody):
    return _accounts().login(body.email, body.password, _client_ip())


@endpoint(
    bp,
    "post",
    "/auth/logout",
    allow=ROLES,
    summary="Revoke this token",
    responses={200: S.StatusOut},
)
def logout():
    close_sockets(_accounts().logout(principal()))
    return {"status": "signed_out"}


@endpoint(bp, "get", "/me", allow=ROLES, summary="The caller's account", responses={200: S.UserOut})
def me():
    return _accounts().get_user(principal().user_id)


@endpoint(
    bp,
    "delete",
    "/me",
    allow=["shopper"],
    summary="Erase the caller's account and personal data",
    description="Deletes the account, every session, raw fixes, position, fence states, "
    "consent, loyalty memberships, the wallet's index, the game state and leaderboard "
    "entries, and what the shopper wrote or did in live rooms. Coupons, the ledger, "
    "geofence events and drop winners keep only the opaque shopper id, which no longer "
    "links to anyone (README, Privacy).",
    responses={200: S.StatusOut},
)
def erase_me():
    who = principal()
    current_app.extensions["geo"].erase(who.user_id)
    current_app.extensions["promotions"].erase(who.user_id)
    current_app.extensions["game"].erase(who.user_id)
    close_sockets(_accounts().delete_user(who.user_id))
    # After the sessions are gone, so that no open socket writes a comment meanwhile.
    erase_viewer(get_redis(), who.user_id)
    return {"status": "erased"}


@endpoint(
    bp,
    "get",
    "/me/consent",
    allow=["shopper"],
    summary="The caller's location consent",
    responses={200: S.ConsentOut},
)
def get_consent():
    return current_app.extensions["geo"].consent(principal().user_id)


@endpoint(
    bp,
    "put",
    "/me/consent",
    allow=["shopper"],
    summary="Grant or withdraw location consent",
    description="Withdrawing deletes every stored place of the shopper: raw fixes, "
    "positions, fence states and the game's last catch place.",
    responses={200: S.ConsentOut},
)
def put_consent(body: ConsentBody):
    return current_app.extensions["geo"].set_consent(principal().user_id, body.location)
