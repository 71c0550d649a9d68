"""A steady load of money writes through real server processes, with a ledger of everything the
servers acknowledged, and an audit that counts every acknowledged item in Redis afterwards.

Used by tests/test_cluster_failover.py and bench/cluster_bench.py. Three kinds of writes, each
retried with the *same* request after a 503 (or any other failure answer), as a client that
honours Retry-After would (every money write is idempotent):

- coupon issuance: `POST /api/campaigns/<cid>/offers/<oid>/issue` (a marketer, channel manual),
  one shopper per request, idempotency key per request, until the offer's total cap refuses;
- redemption at the till: `POST /api/redemptions` (staff of the store), for every other
  acknowledged coupon, one order reference per coupon;
- live drop claims: the `claim` event on /live, one viewer per claim, until SOLD_OUT.

Progress is gated (`allow(n)`): a worker takes request number i only once i < the allowance, so a
test can hold the load at a point, kill a node, and let it go on.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import socketio

from app.sinks import redis_connect
from promotions import keys as pkeys

STORE_ID = "money-store-1"
BRAND = "Footfall"
RETRYABLE_CODES = {"service_unavailable", "not_replicated", "internal_error"}


@dataclass
class Outage:
    """When answers failed and came back (monotonic seconds)."""

    first_failure: float | None = None
    last_failure: float | None = None
    first_success_after: float | None = None

    def failed(self, at: float) -> None:
        if self.first_failure is None:
            self.first_failure = at
        self.last_failure = at
        self.first_success_after = None

    def succeeded(self, at: float) -> None:
        if self.first_failure is not None and self.first_success_after is None:
            self.first_success_after = at

    @property
    def unavailable_s(self) -> float:
        """Seconds from the first failed answer to the first success after the last one."""
        if self.first_failure is None:
            return 0.0
        end = self.first_success_after or self.last_failure or self.first_failure
        return end - self.first_failure


@dataclass
class Ledger:
    """Everything the servers acknowledged, and every answer by status."""

    coupons: dict[str, str] = field(default_factory=dict)  # idempotency key -> coupon id
    shoppers: dict[str, str] = field(default_factory=dict)  # coupon id -> shopper
    redemptions: dict[str, str] = field(default_factory=dict)  # coupon id -> order ref
    wins: dict[str, str] = field(default_factory=dict)  # viewer -> coupon id
    to_redeem: int = 0  # coupons handed to the till
    answers: Counter = field(default_factory=Counter)  # "issue 201", "claim SOLD_OUT", ...
    retry_after: Counter = field(default_factory=Counter)  # Retry-After values of 503s
    failures: list[str] = field(default_factory=list)  # the first few unexpected answers
    outage: Outage = field(default_factory=Outage)


class MoneyLoad:
    """Issue, redeem and claim through `bases` (server URLs) from a few threads."""

    def __init__(
        self,
        bases: list[str],
        *,
        marketer_token: str,
        staff_token: str,
        cid: str,
        oid: str,
        shoppers: list[str],
        viewers: list[tuple[str, str]] | None = None,  # (viewer id, token)
        stream_id: str | None = None,
        issue_threads: int = 4,
        run: str = "r",
    ) -> None:
        self.bases = bases
        self.marketer_token = marketer_token
        self.staff_token = staff_token
        self.cid, self.oid = cid, oid
        self.shoppers = shoppers
        self.viewers = viewers or []
        self.stream_id = stream_id
        self.issue_threads = issue_threads
        self.run = run
        self.ledger = Ledger()
        self.lock = threading.Lock()
        self.gate = threading.Condition()
        self.allowance = 0
        self.claim_allowance = 0
        self.stopping = threading.Event()
        self.issued_all = threading.Event()  # no more coupons for the till: it drains its queue
        self.capped = threading.Event()  # the offer's cap refused: issuing is done
        self.drop_id: str | None = None
        self.redeem_queue: list[tuple[str, str]] = []  # (coupon id, short code)
        self.redeem_ready = threading.Condition(self.lock)
        self.threads: list[threading.Thread] = []
        self.sockets: list[tuple[str, socketio.Client]] = []
        self._next = itertools.count()

    # -- control ---------------------------------------------------------------------------
    def allow(self, n: int, claims: int | None = None) -> None:
        """Let the workers go on up to issuance number n and claim number `claims`."""
        with self.gate:
            self.allowance = max(self.allowance, n)
            self.claim_allowance = max(self.claim_allowance, n if claims is None else claims)
            self.gate.notify_all()

    def connect_viewers(self) -> None:
        """Connect every viewer's socket (alternating servers) and join the stream."""
        for n, (viewer, token) in enumerate(self.viewers):
            client = socketio.Client(reconnection=False)
            client.connect(
                self.bases[n % len(self.bases)],
                transports=["websocket"],
                namespaces=["/live"],
                auth={"token": token},
                wait_timeout=10,
            )
            joined = client.call("join", {"stream_id": self.stream_id}, namespace="/live")
            if "state" not in joined:
                raise RuntimeError(f"viewer could not join: {joined}")
            self.sockets.append((viewer, client))

    def start(self, drop_id: str | None = None) -> None:
        """Start the workers (claims only when a drop is given)."""
        self.drop_id = drop_id
        workers = [self._issuer] * self.issue_threads + [self._redeemer]
        if drop_id is not None:
            workers += [self._claimer] * 2
        for n, target in enumerate(workers):
            thread = threading.Thread(target=target, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def acknowledged(self) -> int:
        """Acknowledged coupons, redemptions and wins so far."""
        with self.lock:
            ledger = self.ledger
            return len(ledger.coupons) + len(ledger.redemptions) + len(ledger.wins)

    def successes_since(self, at: float) -> bool:
        """Tell whether a success was answered after `at` (monotonic) following failures."""
        outage = self.ledger.outage
        return outage.first_success_after is not None and outage.first_success_after > at

    def finish(self, timeout: float = 60.0) -> None:
        """Let every worker run to its end (cap reached, drop sold out, queue drained)."""
        self.allow(10**9)
        deadline = time.monotonic() + timeout
        for thread in self.threads[: self.issue_threads]:
            thread.join(max(0.1, deadline - time.monotonic()))
        for thread in self.threads[self.issue_threads + 1 :]:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.issued_all.set()
        with self.lock:
            self.redeem_ready.notify_all()
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self.stopping.set()
        alive = [t for t in self.threads if t.is_alive()]
        if alive:
            raise TimeoutError(f"{len(alive)} load threads still running")

    def close(self) -> None:
        self.stopping.set()
        self.issued_all.set()
        self.allow(10**9)
        with self.lock:
            self.redeem_ready.notify_all()
        for _, client in self.sockets:
            client.disconnect()

    # -- workers ---------------------------------------------------------------------------
    def _take(self, counter: itertools.count, claims: bool = False) -> int | None:
        n = next(counter)
        with self.gate:
            while (
                n >= (self.claim_allowance if claims else self.allowance)
                and not self.stopping.is_set()
            ):
                self.gate.wait(0.5)
        return None if self.stopping.is_set() else n

    def _answer(self, kind: str, status: str, ok: bool, retry_after: str | None = None) -> None:
        now = time.monotonic()
        with self.lock:
            self.ledger.answers[f"{kind} {status}"] += 1
            if retry_after is not None:
                self.ledger.retry_after[retry_after] += 1
            if ok:
                self.ledger.outage.succeeded(now)
            else:
                self.ledger.outage.failed(now)

    def _note(self, text: str) -> None:
        with self.lock:
            if len(self.ledger.failures) < 20:
                self.ledger.failures.append(text[:300])

    def _post(self, session: requests.Session, url: str, body: dict, kind: str):
        """POST until an answer that is not a failure; return it (None when stopping)."""
        while not self.stopping.is_set():
            try:
                response = session.post(url, json=body, timeout=30)
            except requests.RequestException as exc:
                self._answer(kind, "connection_error", False)
                self._note(f"{kind}: {exc!r}")
                continue
            status = response.status_code
            if status >= 500 or status == 429:
                code = ""
                try:
                    code = response.json()["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    pass
                self._answer(
                    kind, f"{status} {code}".strip(), False, response.headers.get("Retry-After")
                )
                # 429: the till's check lock of an attempt cut short by the outage, held until
                # it expires ("another code is being checked at this till"): try again.
                if (status != 503 or code not in RETRYABLE_CODES) and status != 429:
                    self._note(f"{kind}: {status} {response.text}")
                continue
            return response
        return None

    def _issuer(self, n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.marketer_token}"
        base = self.bases[n % len(self.bases)]
        url = f"{base}/api/campaigns/{self.cid}/offers/{self.oid}/issue"
        try:
            while not self.capped.is_set():
                i = self._take(self._next)
                if i is None:
                    return
                key = f"{self.run}-{i}"
                shopper = self.shoppers[i % len(self.shoppers)]
                response = self._post(
                    session, url, {"shopper_id": shopper, "idempotency_key": key}, "issue"
                )
                if response is None:
                    return
                body = response.json()
                if response.status_code in (200, 201):
                    self._answer("issue", str(response.status_code), True)
                    coupon = body["coupon"]
                    with self.lock:
                        self.ledger.coupons[key] = coupon["id"]
                        self.ledger.shoppers[coupon["id"]] = shopper
                        if i % 2 == 0:
                            self.redeem_queue.append((coupon["id"], coupon["code"]))
                            self.ledger.to_redeem += 1
                            self.redeem_ready.notify()
                elif body.get("error", {}).get("code") == "CAP_TOTAL_REACHED":
                    self._answer("issue", "CAP_TOTAL_REACHED", True)
                    self.capped.set()
                else:
                    self._answer("issue", str(response.status_code), True)
                    self._note(f"issue: {response.status_code} {response.text}")
        finally:
            session.close()

    def _redeemer(self, n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.staff_token}"
        try:
            while True:
                with self.lock:
                    while not self.redeem_queue and not (
                        self.stopping.is_set() or self.issued_all.is_set()
                    ):
                        self.redeem_ready.wait(0.5)
                    if not self.redeem_queue:
                        return
                    coupon_id, code = self.redeem_queue.pop(0)
                order = f"order-{coupon_id}"
                base = self.bases[len(self.ledger.redemptions) % len(self.bases)]
                response = self._post(
                    session,
                    f"{base}/api/redemptions",
                    {"code": code, "basket_fen": 10_000, "order_ref": order},
                    "redeem",
                )
                if response is None:
                    return
                if response.status_code in (200, 201):
                    self._answer("redeem", str(response.status_code), True)
                    with self.lock:
                        self.ledger.redemptions[coupon_id] = order
                else:
                    self._answer("redeem", str(response.status_code), True)
                    self._note(f"redeem: {response.status_code} {response.text}")
        finally:
            session.close()

    def _claimer(self, n: int) -> None:
        mine = self.sockets[n % 2 :: 2]
        counter = itertools.count(n % 2, 2)
        for viewer, client in mine:
            i = self._take(counter, claims=True)
            if i is None:
                return
            while not self.stopping.is_set():
                try:
                    ack = client.call(
                        "claim", {"drop_id": self.drop_id}, namespace="/live", timeout=30
                    )
                except (socketio.exceptions.SocketIOError, OSError) as exc:
                    self._answer("claim", "timeout", False)
                    self._note(f"claim: {exc!r}")
                    continue
                code = (ack.get("error") or {}).get("code") if isinstance(ack, dict) else None
                if code in RETRYABLE_CODES:
                    self._answer("claim", code, False)
                    if code == "internal_error":
                        self._note(f"claim: {json.dumps(ack)}")
                    continue
                if code is not None:
                    self._answer("claim", code, True)
                    if code not in ("SOLD_OUT", "DROP_CLOSED"):
                        self._note(f"claim: {json.dumps(ack)}")
                    break
                self._answer("claim", ack["outcome"], True)
                with self.lock:
                    self.ledger.wins[viewer] = ack["coupon"]["id"]
                break


def audit(r, load: MoneyLoad, *, cap: int, drop_quantity: int | None) -> dict[str, Any]:
    """Count every acknowledged coupon, redemption and win in Redis; check the caps."""
    ledger = load.ledger
    cid = load.cid
    coupons = r.hgetall(pkeys.coupons(cid))
    states = r.hgetall(pkeys.state(cid))
    lost: list[str] = []
    for coupon_id in list(ledger.coupons.values()) + list(ledger.wins.values()):
        c, _, seq = coupon_id.rpartition("-")
        if c != cid or seq not in coupons or seq not in states:
            lost.append(f"coupon {coupon_id}")
            continue
        shopper = json.loads(coupons[seq])["shopper_id"]
        if not r.sismember(pkeys.shopper_campaigns(shopper), cid):
            lost.append(f"wallet index of {coupon_id}")
        if r.zscore(pkeys.wallet(cid, shopper), seq) is None:
            lost.append(f"wallet entry of {coupon_id}")
    for coupon_id, order in ledger.redemptions.items():
        state = json.loads(states.get(coupon_id.rpartition("-")[2], "{}"))
        if state.get("status") != "redeemed" or state["redemption"]["order_ref"] != order:
            lost.append(f"redemption {coupon_id}")
    by_offer = Counter(json.loads(doc)["offer_id"] for doc in coupons.values())
    issued = by_offer[load.oid]
    out: dict[str, Any] = {
        "acknowledged": {
            "coupons": len(ledger.coupons),
            "redemptions": len(ledger.redemptions),
            "wins": len(ledger.wins),
            "to_redeem": ledger.to_redeem,
        },
        "lost": lost,
        "issued": issued,
        "oversell": max(0, issued - cap),
        "cap": cap,
        "answers": dict(ledger.answers),
        "failures": ledger.failures,
        "unavailable_s": round(ledger.outage.unavailable_s, 3),
    }
    if drop_quantity is not None and load.drop_id is not None:
        from live.drops import drop_key, winners_key

        winners = r.hgetall(winners_key(load.stream_id, load.drop_id))
        claimed = int(r.hget(drop_key(load.stream_id, load.drop_id), "claimed") or 0)
        for viewer in ledger.wins:
            if viewer not in winners:
                lost.append(f"win of {viewer}")
        drop_coupons = sum(
            1
            for doc in coupons.values()
            if (json.loads(doc).get("source") or {}).get("drop_id") == load.drop_id
        )
        out.update(
            winners=len(winners),
            claimed=claimed,
            drop_coupons=drop_coupons,
            drop_quantity=drop_quantity,
        )
        out["oversell"] += max(
            0, len(winners) - drop_quantity, claimed - drop_quantity, drop_coupons - drop_quantity
        )
    return out


def make_world(redis_url: str, bases: list[str], var_dir, shoppers: int = 24) -> dict:
    """A live campaign with a drop offer, a store with its staff, a marketer, shoppers (also the
    drop's viewers), and a live stream of the campaign with its host connected (on `bases`).
    Close it with `close_world`."""
    from promotions.models import CampaignIn, OfferIn
    from tests.test_live_processes import Client, schedule_stream
    from tests.test_processes import PASSWORD, make_helper_app, session_for

    helper = make_helper_app(redis_url, var_dir)
    promos = helper.extensions["promotions"]
    accounts = helper.extensions["accounts"]
    helper.extensions["stores"].create(
        {
            "id": STORE_ID,
            "name": "Money Plaza",
            "brand": BRAND,
            "city": "Shanghai",
            "lat": 31.24,
            "lon": 121.48,
            "fence": {"type": "circle", "radius_m": 80},
        }
    )
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(
            name="money", starts_at=now - 60, ends_at=now + 3600, targets={"brands": [BRAND]}
        ),
        actor="t",
    )["id"]
    drop_offer = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=500, channels=["live_drop"]),
        actor="t",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="t")
    email = f"staff-{uuid.uuid4().hex[:8]}@example.test"
    accounts.create_user(email, PASSWORD, "staff", store_id=STORE_ID)
    staff = accounts.open_session(accounts.find_by_email(email))
    marketer = session_for(helper, "marketer")
    people = [session_for(helper, "shopper") for _ in range(shoppers)]
    host = session_for(helper, "host")
    sid = schedule_stream(bases[-1], marketer["token"], [host["user"]["id"]], campaign_id=cid)
    host_socket = Client(bases[0], "/host", {"token": host["token"], "stream_id": sid})
    started = host_socket.call("start")
    if started != {"status": "live"}:
        raise RuntimeError(f"the stream did not go live: {started}")
    return {
        "helper": helper,
        "promos": promos,
        "bases": bases,
        "cid": cid,
        "drop_offer": drop_offer,
        "staff": staff["token"],
        "marketer": marketer["token"],
        "shoppers": people,
        "sid": sid,
        "host": host_socket,
        "redis": redis_connect(redis_url, decode_responses=True, socket_timeout=2.0),
    }


def close_world(world: dict) -> None:
    world["host"].close()
    world["redis"].close()
    world["helper"].extensions["redis"].close()


def new_offer(world: dict, cap: int) -> str:
    """A manual offer of the world's campaign capped at `cap` coupons."""
    from promotions.models import OfferIn

    return world["promos"].campaigns.create_offer(
        world["cid"],
        OfferIn(
            name=f"cap {cap}",
            kind="amount_off",
            amount_off_fen=1000,
            channels=["manual"],
            caps={"total": cap, "per_shopper": 1000},
        ),
        actor="t",
    )["id"]


def start_load(world: dict, cap: int, quantity: int, run: str) -> MoneyLoad:
    """A load on a new manual offer capped at `cap` and a new drop of `quantity`, claimed by
    twice as many viewers; held at request 0 until `allow`."""
    oid = new_offer(world, cap)
    shoppers = world["shoppers"]
    load = MoneyLoad(
        world["bases"],
        marketer_token=world["marketer"],
        staff_token=world["staff"],
        cid=world["cid"],
        oid=oid,
        shoppers=[s["user"]["id"] for s in shoppers],
        viewers=[(s["user"]["id"], s["token"]) for s in shoppers[: 2 * quantity]],
        stream_id=world["sid"],
        run=run,
    )
    load.connect_viewers()
    drop = world["host"].call(
        "drop", {"offer_id": world["drop_offer"], "quantity": quantity, "window_s": 300}
    )
    if "id" not in drop:
        raise RuntimeError(f"the drop did not start: {drop}")
    load.start(drop["id"])
    return load
