"""Outgoing webhooks: endpoints (with their secret shown once), rotation, the delivery log,
retry now and a test ping. Marketers and admins only."""

from __future__ import annotations

from typing import Literal

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from webhooks import EVENT_TYPES, EndpointIn, EndpointPatch
from webhooks.endpoints import DEFAULT_OVERLAP_S, ENDPOINT_ID, MAX_OVERLAP_S
from webhooks.log import CURSOR, RESULTS

from .. import schemas as S
from ..api import audit, endpoint, principal

bp = APIBlueprint(
    "webhooks",
    __name__,
    url_prefix="/api/webhooks",
    abp_tags=[Tag(name="webhooks", description="signed outgoing events (Standard Webhooks)")],
)

MANAGERS = ("marketer", "admin")
MSG_ID = r"^msg_[a-z2-7]{1,40}$"
EVENT_TYPE = r"^[a-z_]{1,20}\.[a-z_]{1,30}$"


class EndpointPath(BaseModel):
    endpoint_id: str = Field(pattern=ENDPOINT_ID)


class MessagePath(BaseModel):
    endpoint_id: str = Field(pattern=ENDPOINT_ID)
    msg_id: str = Field(pattern=MSG_ID)


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_s: int = Field(
        default=DEFAULT_OVERLAP_S,
        ge=0,
        le=MAX_OVERLAP_S,
        description="how long the previous secret keeps signing too (0 = stop at once)",
    )


class AttemptQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, pattern=EVENT_TYPE, description="event type")
    result: Literal[RESULTS] | None = None  # type: ignore[valid-type]
    msg_id: str | None = Field(default=None, pattern=MSG_ID)
    cursor: str | None = Field(default=None, pattern=CURSOR, description="next_cursor")
    limit: int = Field(default=50, ge=1, le=200)


def _hooks():
    return current_app.extensions["webhooks"]


def _actor() -> str:
    who = principal()
    return f"{who.role}:{who.user_id}"


@endpoint(
    bp,
    "get",
    "/event-types",
    allow=MANAGERS,
    summary="The event types an endpoint can receive",
    responses={200: S.WebhookEventTypes},
)
def event_types():
    return {"items": list(EVENT_TYPES)}


@endpoint(
    bp,
    "get",
    "/endpoints",
    allow=MANAGERS,
    summary="Every webhook endpoint, oldest first",
    responses={200: S.WebhookEndpointList},
)
def list_endpoints():
    return {"items": _hooks().endpoints.list()}


@endpoint(
    bp,
    "post",
    "/endpoints",
    allow=MANAGERS,
    summary="Register an endpoint; its secret is in this answer only",
    description="The URL must be https (http only with WEBHOOK_ALLOW_HTTP) and resolve to "
    "public addresses (or ones in WEBHOOK_ALLOW_NETS). With campaign_id, the endpoint "
    "receives only that campaign's events.",
    responses={201: S.WebhookEndpointCreated},
)
def create_endpoint(body: EndpointIn):
    hooks = _hooks()
    if body.campaign_id is not None:
        current_app.extensions["promotions"].campaigns.get(body.campaign_id)
    record, secret = hooks.endpoints.create(body, _actor())
    audit("create", "webhook", record["id"], None, record)
    return {"endpoint": record, "secret": secret}, 201


@endpoint(
    bp,
    "get",
    "/endpoints/<endpoint_id>",
    allow=MANAGERS,
    summary="One endpoint, with why it was disabled if it was",
    responses={200: S.WebhookEndpoint},
)
def get_endpoint(path: EndpointPath):
    return _hooks().endpoints.get(path.endpoint_id)


@endpoint(
    bp,
    "patch",
    "/endpoints/<endpoint_id>",
    allow=MANAGERS,
    summary="Change an endpoint's URL, event types or description; disable or enable it",
    description="Enabling a disabled endpoint clears its failure record; messages that "
    "failed meanwhile can be sent again with retry.",
    responses={200: S.WebhookEndpoint},
)
def update_endpoint(path: EndpointPath, body: EndpointPatch):
    endpoints = _hooks().endpoints
    before = endpoints.get(path.endpoint_id)
    after = endpoints.update(path.endpoint_id, body)
    audit("update", "webhook", path.endpoint_id, before, after, ignore=frozenset({"updated_at"}))
    return after


@endpoint(
    bp,
    "delete",
    "/endpoints/<endpoint_id>",
    allow=MANAGERS,
    summary="Remove an endpoint with its log; queued messages to it are dropped",
    responses={200: S.StatusOut},
)
def delete_endpoint(path: EndpointPath):
    endpoints = _hooks().endpoints
    before = endpoints.get(path.endpoint_id)
    endpoints.delete(path.endpoint_id)
    audit("delete", "webhook", path.endpoint_id, before, None)
    return {"status": "deleted", "id": path.endpoint_id}


@endpoint(
    bp,
    "post",
    "/endpoints/<endpoint_id>/rotate-secret",
    allow=MANAGERS,
    summary="Give an endpoint a new secret (shown once); the old one signs too for overlap_s",
    responses={200: S.WebhookEndpointCreated},
)
def rotate_secret(path: EndpointPath, body: RotateIn):
    record, secret = _hooks().endpoints.rotate(path.endpoint_id, body.overlap_s)
    audit("rotate_secret", "webhook", path.endpoint_id, None, {"overlap_s": body.overlap_s})
    return {"endpoint": record, "secret": secret}


@endpoint(
    bp,
    "post",
    "/endpoints/<endpoint_id>/ping",
    allow=MANAGERS,
    summary="Send a webhook.ping message to this endpoint (see the attempts)",
    responses={202: S.WebhookQueued},
)
def ping(path: EndpointPath):
    msg = _hooks().dispatcher.ping(path.endpoint_id)
    return {"msg_id": msg, "state": "queued"}, 202


@endpoint(
    bp,
    "get",
    "/endpoints/<endpoint_id>/attempts",
    allow=MANAGERS,
    summary="The delivery log: every attempt, newest first, filtered by type and result",
    responses={200: S.WebhookAttemptPage},
)
def attempts(path: EndpointPath, query: AttemptQuery):
    hooks = _hooks()
    hooks.endpoints.record(path.endpoint_id)
    return hooks.log.attempts(
        path.endpoint_id,
        type=query.type,
        result=query.result,
        msg_id=query.msg_id,
        cursor=query.cursor,
        limit=query.limit,
    )


@endpoint(
    bp,
    "get",
    "/endpoints/<endpoint_id>/failed",
    allow=MANAGERS,
    summary="Messages whose retries ran out or that were not sent (endpoint disabled)",
    responses={200: S.WebhookFailedList},
)
def failed(path: EndpointPath):
    hooks = _hooks()
    hooks.endpoints.record(path.endpoint_id)
    return {"items": hooks.log.failed(path.endpoint_id)}


@endpoint(
    bp,
    "post",
    "/endpoints/<endpoint_id>/messages/<msg_id>/retry",
    allow=MANAGERS,
    summary="Retry now: a scheduled message is due at once; a failed one is sent once more",
    responses={202: S.WebhookQueued},
)
def retry_now(path: MessagePath):
    state = _hooks().dispatcher.retry_now(path.endpoint_id, path.msg_id)
    return {"msg_id": path.msg_id, "state": state}, 202
