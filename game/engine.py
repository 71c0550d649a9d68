"""The catch game of one process: configuration, the catch (state read, Python rules, the CATCH
script, the reward), the shopper's status and collection, erasure.

The parts live next door, one job each: `world` (spawn tables, stores, one spawn by id),
`visible` (the spawn list), `rules` (the catch rules that run in Python), `scripts` (the Lua
and its named arguments), `strikes` (anti-cheat moderation), `leaderboard` (boards and the
reward's keys).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import redis

from core.errors import DomainError, NotFound, ValidationFailed
from core.scripts import LuaScripts
from geo.engine import Fix, LocationEngine
from geo.motion import Point

from . import keys
from .errors import GameRefused, no_consent, script_refusal, suspended
from .leaderboard import Boards, Days, board_keys, reward_call
from .models import CATCH_RATE, FLEE_RATE, GameConfigIn
from .rules import LastCatch, Throw, first_refusal
from .scripts import SOURCES, CatchCall, CatchStateCall, roll_for
from .settings import GameNotifier, GameSettings, NoNotifier
from .spawns import Spawn
from .strikes import Strikes
from .visible import VISIBLE_LIMIT, SpawnList
from .world import RARE, World

ATTEMPTS_TTL_S = 2 * 3600  # spawns live an hour at most
REF_CACHE_SIZE = 100_000  # spawn id -> opaque reference, per process


class Game:
    """The game of one process: configuration cache, spawn tables, and the catch rules."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        promotions,
        engine: LocationEngine,
        settings: GameSettings | None = None,
        notifier: GameNotifier | None = None,
    ) -> None:
        self.r = r
        self.clock = clock
        self.promotions = promotions
        self.engine = engine
        self.settings = settings or GameSettings()
        self.notifier = notifier or NoNotifier()
        self.scripts = LuaScripts(r, SOURCES)
        self.tz = ZoneInfo(self.settings.timezone)
        self.days = Days(self.tz)
        self.world = World(r, clock, promotions)
        self.spawn_list = SpawnList(
            self.world, clock, self.scripts, self.settings, self.notifier, self.spawn_ref
        )
        self.moderation = Strikes(r, clock, self.scripts, self.settings, self.notifier, engine)
        self.boards = Boards(r, clock, self.days, self.world.config)
        self._sprites: dict[tuple[str, str, int], tuple[bytes, str]] = {}
        self._ref_key = self.settings.reference_key
        self._refs: dict[str, str] = {}
        # Withdrawing location consent in geo erases the game's copy of places too.
        engine.add_location_eraser(self.erase_location)

    def spawn_ref(self, spawn_id: str) -> str:
        """Return a spawn's opaque reference: the same for one spawn, but naming no place.

        A spawn id carries its map cell (~70 m) or its store; a plain hash of it could be
        reversed by trying the few cells of a city, so the reference is keyed (HMAC). Spawn
        ids repeat (every throw and list names them), so each process remembers its refs.
        """
        ref = self._refs.get(spawn_id)
        if ref is not None:
            return ref
        if self._ref_key is None:
            fresh = secrets.token_hex(32)
            self.r.set(keys.REFERENCE_KEY, fresh, nx=True)
            self._ref_key = (self.r.get(keys.REFERENCE_KEY) or fresh).encode()
        ref = hmac.new(self._ref_key, spawn_id.encode(), hashlib.sha256).hexdigest()[:24]
        if len(self._refs) >= REF_CACHE_SIZE:
            self._refs.clear()  # spawns live an hour at most: the live ones come back
        self._refs[spawn_id] = ref
        return ref

    # -- configuration -------------------------------------------------------------------
    def configure(self, cid: str, data: GameConfigIn) -> dict[str, Any]:
        """Set a campaign's game (species table, densities, the store-catch offer)."""
        campaign = self.promotions.campaigns.get(cid)
        if campaign["status"] == "ended":
            raise DomainError(
                "an ended campaign's game cannot change",
                code="CAMPAIGN_ENDED",
                field="campaign_id",
                status=409,
            )
        if data.offer_id is not None:
            offer = self.promotions.campaigns.get_offer(cid, data.offer_id)
            if "game" not in offer["channels"]:
                raise ValidationFailed(
                    "the offer does not allow the game channel",
                    code="offer_not_for_game",
                    field="offer_id",
                )
        doc = data.model_dump()
        doc["campaign_id"] = cid
        doc["updated_at"] = self.clock.now()
        pipe = self.r.pipeline(transaction=False)
        pipe.set(keys.config(cid), json.dumps(doc))
        pipe.sadd(keys.CAMPAIGNS, cid)
        pipe.execute()
        # The version after the configuration, in its own round trip: on Redis Cluster a
        # pipeline's commands to different nodes have no order, and a process that saw the new
        # version before the new configuration would cache the old one.
        self.r.incr(keys.VERSION)
        self.world.invalidate()
        return doc

    def config(self, cid: str) -> dict[str, Any]:
        """Return a campaign's game configuration (NotFound if it has none)."""
        return self.world.config(cid)

    def live_campaigns(self) -> list[str]:
        """Return the ids of live campaigns that have a game (cached for a second)."""
        return self.world.live_campaigns()

    # -- spawns ----------------------------------------------------------------------------
    def visible(
        self, shopper_id: str, radius_m: float | None = None, limit: int = VISIBLE_LIMIT
    ) -> dict[str, Any]:
        """Return the nearest spawns around the shopper's last trusted fix (at most limit)."""
        return self.spawn_list.visible(shopper_id, radius_m, limit)

    def spawn(self, spawn_id: str, now: float | None = None) -> Spawn:
        """Regenerate one spawn from its id (GameRefused SPAWN_NOT_FOUND if there is none)."""
        return self.world.spawn(spawn_id, now)

    # -- catching ------------------------------------------------------------------------
    def catch(self, shopper_id: str, spawn_id: str, fix: Fix) -> dict[str, Any]:
        """Try to catch a spawn at the shopper's current fix; every refusal has a code.

        One read of the shopper's state (one command), the rules that need Python
        (`game.rules`), then the CATCH script, which checks the exact caps again and records
        the attempt; a catch then scores its reward (with the store's coupon, if any).
        """
        s = self.settings
        now = self.clock.now()
        (
            anchor,
            consent,
            trust,
            suspended_flag,
            restricted,
            last_at,
            last_lat,
            last_lon,
            last_city,
            recent,
        ) = CatchStateCall.for_shopper(shopper_id, now - s.rate_window_s).call(self.scripts)
        if suspended_flag == "1":
            raise suspended()
        if consent != "1":
            raise no_consent()
        shadow = restricted is not None and float(restricted) > now
        spawn = self.world.spawn(spawn_id, now)
        if shadow and spawn.rarity in RARE:
            raise GameRefused(
                "SPAWN_NOT_FOUND", "no such creature here", status=404, field="spawn_id"
            )
        ref = self.spawn_ref(spawn.id)
        throw = Throw(
            shopper_id=shopper_id,
            spawn=spawn,
            ref=ref,
            fix=fix,
            now=now,
            anchor=anchor,
            point=Point.decode(anchor),
            trust=int(trust or 100),
            last=None
            if last_at is None
            else LastCatch(float(last_at), float(last_lat), float(last_lon), last_city),
            recent=recent,
            settings=s,
            engine=self.engine,
            city_of=self.world.city_of,
            suspicious_fixes=self.moderation.suspicious_fixes,
        )
        refusal = first_refusal(throw)
        if refusal is not None:
            if refusal.strike is not None:
                self.moderation.record(shopper_id, refusal.strike, refusal.evidence())
            raise GameRefused(
                refusal.code,
                refusal.message,
                status=refusal.status,
                field=refusal.field,
                details=refusal.details,
            )
        city = self.world.city_of(spawn)
        day = self.days(now)
        reply = CatchCall.for_shopper(
            shopper_id,
            now=now,
            spawn=spawn.id,
            day=day,
            cooldown_s=s.cooldown_s,
            daily_cap=s.daily_cap,
            catch_rate=CATCH_RATE[spawn.rarity],
            flee_rate=FLEE_RATE[spawn.rarity],
            species_field=f"{spawn.campaign_id}|{spawn.species}",
            attempts_ttl_s=ATTEMPTS_TTL_S,
            lat=fix.lat,
            lon=fix.lon,
            rate_window_s=int(s.rate_window_s),
            city=city,
            ref=ref,
            last_catch_ttl_s=int(self.engine.settings.retention_s),
            board=f"{spawn.campaign_id}|{city.lower()}|{day}",
        ).call(self.scripts)
        if reply[0] == "no":
            if reply[1] == "ALREADY_CAUGHT":
                # A retry after a crash between the catch and its reward finishes the reward.
                self._reward(shopper_id, spawn, ref, city, day, shadow)
            raise script_refusal(reply)
        outcome, attempt = reply[0], int(reply[1])
        roll, _ = roll_for(spawn.id, shopper_id, attempt)
        result: dict[str, Any] = {
            "outcome": outcome,
            "attempt": attempt,
            "roll": round(roll, 6),
            "catch_rate": CATCH_RATE[spawn.rarity],
            "spawn": spawn.view(fix.lat, fix.lon),
            "points": 0,
            "total_points": None,
            "coupon": None,
            "coupon_refused": None,
        }
        if outcome == "caught":
            result.update(self._reward(shopper_id, spawn, ref, city, day, shadow))
        self.notifier.game_event(shopper_id, "catch_result", result)
        if outcome == "caught":
            self.notifier.game_event(
                shopper_id,
                "reward",
                {
                    "spawn_id": spawn.id,
                    "species": spawn.species,
                    "points": result["points"],
                    "total_points": result["total_points"],
                    "coupon": result["coupon"],
                },
            )
        return result

    def _reward(
        self, shopper_id: str, spawn: Spawn, ref: str, city: str, day: str, shadow: bool
    ) -> dict[str, Any]:
        """Add the points to the boards and issue the store offer, once per catch."""
        # The catch id names the spawn by its opaque reference: it stays in the coupon's
        # source and the ledger, which must not place the shopper.
        catch_id = f"{ref}|{shopper_id}"
        cid = spawn.campaign_id
        call = reward_call(
            cid, int(spawn.born_at // 3600), city, day, catch_id, shopper_id, spawn.points
        )

        def queue_reward(pipe) -> int:
            call.queue(self.scripts, pipe)
            return 1

        coupon = refused = reward = None
        table = self.world.table(cid)
        offer_id = table.offer_id if table is not None else None
        if spawn.store_id and offer_id and not shadow:
            # The reward rides in the issuance's round trip.
            issued = self.promotions.issue(
                cid,
                offer_id,
                shopper_id,
                channel="game",
                idempotency_key=f"game:{catch_id}",
                store_id=spawn.store_id,
                actor="game",
                source={"catch_id": catch_id, "species": spawn.species},
                prelude=queue_reward,
            )
            if issued.ok:
                coupon = self.promotions.coupons.present(issued.coupon, owner=True)
            else:
                refused = issued.reason
            if issued.prelude:
                reward = issued.prelude[0]
        if reward is None or isinstance(reward, redis.exceptions.NoScriptError):
            reward = call.call(self.scripts)
        elif isinstance(reward, Exception):
            raise reward
        return {
            "points": spawn.points,
            "total_points": float(reward[1]),
            "coupon": coupon,
            "coupon_refused": refused,
        }

    # -- anti-cheat ----------------------------------------------------------------------
    def strikes(self, shopper_id: str) -> dict[str, Any]:
        """Return a shopper's strikes with their evidence and the current restriction."""
        return self.moderation.of(shopper_id)

    def clear_strikes(self, shopper_id: str, actor: str) -> dict[str, Any]:
        """Clear a shopper's strikes and restrictions; the history keeps a 'cleared' entry."""
        return self.moderation.clear(shopper_id, actor)

    def status(self, shopper_id: str) -> dict[str, Any]:
        """What the shopper may know: catches today, cooldown, a warning, a suspension."""
        now = self.clock.now()
        st = self.r.hmget(
            keys.state(shopper_id), "day", "day_catches", "last_attempt", "strikes", "suspended"
        )
        day = self.days(now)
        cooldown_until = (float(st[2]) + self.settings.cooldown_s) if st[2] else None
        return {
            "catches_today": int(st[1] or 0) if st[0] == day else 0,
            "daily_cap": self.settings.daily_cap,
            "cooldown_until": cooldown_until if cooldown_until and cooldown_until > now else None,
            # A shadow restriction is, by design, not disclosed; a warning and a suspension are.
            "warned": int(st[3] or 0) >= 1,
            "suspended": st[4] == "1",
        }

    # -- rewards, read back --------------------------------------------------------------
    def collection(self, shopper_id: str) -> dict[str, Any]:
        """Return which species the shopper has caught, and how many, per campaign."""
        raw = self.r.hgetall(keys.collection(shopper_id))
        items = []
        for name, count in sorted(raw.items()):
            cid, _, species = name.partition("|")
            entry = {"campaign_id": cid, "species": species, "count": int(count)}
            table = self.world.table(cid)
            if table is not None and species in table.species:
                entry.update(
                    name=table.species[species]["name"], rarity=table.species[species]["rarity"]
                )
            items.append(entry)
        return {"items": items, "species": len(items), "catches": sum(i["count"] for i in items)}

    def leaderboard(
        self,
        cid: str,
        *,
        scope: str = "campaign",
        city: str | None = None,
        period: str = "all",
        limit: int = 10,
        shopper_id: str | None = None,
    ) -> dict[str, Any]:
        """Return the top of a campaign's board (or of one city's), and the caller's rank."""
        return self.boards.leaderboard(
            cid, scope=scope, city=city, period=period, limit=limit, shopper_id=shopper_id
        )

    def sprite(self, cid: str, species: str, size: int) -> tuple[bytes, str]:
        """Return a species' sprite PNG and its ETag (drawn once per process, then cached)."""
        from .sprites import sprite_png

        table = self.world.table(cid)
        if table is None or species not in table.species:
            raise NotFound(
                "no such species in this campaign's game", code="species_not_found", field="species"
            )
        sp = table.species[species]
        key = (species, sp["rarity"], size)
        hit = self._sprites.get(key)
        if hit is None:
            png = sprite_png(species, sp["name"], sp["rarity"], size=size)
            hit = self._sprites[key] = (png, hashlib.sha256(png).hexdigest()[:20])
        return hit

    # -- erasure -------------------------------------------------------------------------
    def erase_location(self, shopper_id: str) -> None:
        """Delete the places the game keeps of a shopper (location consent withdrawn)."""
        self.r.delete(keys.last_catch(shopper_id))
        self.spawn_list.forget(shopper_id)

    def erase(self, shopper_id: str) -> None:
        """Remove the shopper's game state, collection, strike history and board entries
        (account erasure)."""
        scored = self.r.smembers(keys.boards(shopper_id))
        pipe = self.r.pipeline(transaction=False)
        for entry in scored:
            cid, rest = entry.split("|", 1)
            city, day = rest.rsplit("|", 1)  # a city's name may hold anything
            for board in board_keys(cid, city, day):
                pipe.zrem(board, shopper_id)
        # One DEL per key: a Redis Cluster pipeline takes one key per DEL.
        for key in (
            keys.state(shopper_id),
            keys.attempts(shopper_id),
            keys.collection(shopper_id),
            keys.recent(shopper_id),
            keys.strikes(shopper_id),
            keys.last_catch(shopper_id),
            keys.boards(shopper_id),
        ):
            pipe.delete(key)
        pipe.execute()
        self.spawn_list.forget(shopper_id)


__all__ = ["RARE", "Game", "GameNotifier", "GameRefused", "GameSettings", "roll_for"]
