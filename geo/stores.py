"""Stores and their fences: validation, the catalog on Redis, bulk import and GeoJSON export."""

from __future__ import annotations

import csv
import io
import json
import math
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import Conflict, NotFound, ValidationFailed
from core.fields import Number

from . import keys
from .geometry import (
    FENCE_MAX_OFFSET_M,
    Fence,
    FenceError,
    fence_from_dict,
    geodesic_m,
    parse_fence,
)
from .hours import Hours, HoursError, parse_hours

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
DEFAULT_FENCE = {"type": "circle", "radius_m": 100}
MAX_IMPORT = 20_000
CSV_COLUMNS = ("id", "name", "brand", "city", "lat", "lon", "address", "tz", "hours", "fence")
# Told of a bulk operation's progress: (phase, done, total or None when unknown).
Progress = Callable[[str, int, int | None], None]


class StoreIn(BaseModel):
    """A store as a marketer sends it (create, replace, or one import row)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=ID_PATTERN, description="omit to generate one")
    name: str = Field(min_length=1, max_length=200)
    brand: str = Field(min_length=1, max_length=100)
    city: str = Field(min_length=1, max_length=100)
    lat: Number = Field(ge=-85.0, le=85.0)
    lon: Number = Field(ge=-180.0, le=180.0)
    address: str = Field(default="", max_length=300)
    opening_hours: dict[str, Any] | None = Field(
        default=None,
        description='{"tz": "Asia/Shanghai", "weekly": {"mon": [["10:00", "22:00"]], ...}}, '
        '{"tz": ..., "always": true}, or null for always open',
    )
    fence: dict[str, Any] = Field(
        default_factory=lambda: dict(DEFAULT_FENCE),
        description='{"type": "circle", "radius_m": 20..5000} or a GeoJSON Polygon/'
        'MultiPolygon ([lon, lat]); "always_active": true ignores opening hours',
    )


class StorePatch(BaseModel):
    """A partial update of a store."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    brand: str | None = Field(default=None, min_length=1, max_length=100)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    lat: Number | None = Field(default=None, ge=-85.0, le=85.0)
    lon: Number | None = Field(default=None, ge=-180.0, le=180.0)
    address: str | None = Field(default=None, max_length=300)
    opening_hours: dict[str, Any] | None = None
    fence: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """A store as the location engine needs it: the fence and when it is active."""

    id: str
    fence: Fence
    hours: Hours | None

    def active_at(self, ts: float) -> bool:
        """Tell whether the fence triggers at a time (opening hours unless always active)."""
        if self.fence.always_active or self.hours is None:
            return True
        return self.hours.is_open_ts(ts)


def validate_store(
    data: dict[str, Any], *, prefix: str = "", max_offset_m: float = FENCE_MAX_OFFSET_M
) -> dict[str, Any]:
    """Check a store (types, ranges, hours, fence shape and place) and return its stored form.

    The fence must contain the store's point or lie within `max_offset_m` of it.
    """
    try:
        model = StoreIn.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise ValidationFailed(msg, field=prefix + loc) from None
    return _finish(model.model_dump(), prefix, max_offset_m)


def _finish(store: dict[str, Any], prefix: str, max_offset_m: float) -> dict[str, Any]:
    if not store.get("id"):
        store["id"] = "st-" + secrets.token_hex(6)
    try:
        hours = parse_hours(store["opening_hours"]) if store["opening_hours"] is not None else None
    except HoursError as exc:
        raise ValidationFailed(
            exc.reason, code="invalid_hours", field=prefix + (exc.field or "opening_hours")
        ) from None
    try:
        fence = parse_fence(store["fence"], store["lat"], store["lon"], max_offset_m)
    except FenceError as exc:
        raise ValidationFailed(
            exc.reason, code="invalid_fence", field=prefix + (exc.field or "fence")
        ) from None
    store["opening_hours"] = hours.to_dict() if hours is not None else None
    store["fence"] = fence.to_dict()
    return store


def entry_from_record(
    record: dict[str, Any],
    hours_cache: dict[str, Hours] | None = None,
) -> StoreEntry:
    """Build the engine's view of a stored store record.

    Thousands of stores share a few dozen opening-hours specs: a cache keyed by the spec's
    JSON parses each once.
    """
    spec = record.get("opening_hours")
    hours = None
    if spec is not None:
        if hours_cache is None:
            hours = parse_hours(spec)
        else:
            key = json.dumps(spec, sort_keys=True)
            hours = hours_cache.get(key)
            if hours is None:
                hours = hours_cache[key] = parse_hours(spec)
    return StoreEntry(id=record["id"], fence=fence_from_dict(record["fence"]), hours=hours)


def tier_of(fence: Fence) -> int:
    """Return the index tier whose search radius covers the fence's reach."""
    reach = fence.extent_m + fence.hysteresis_m
    for tier, bound in enumerate(keys.TIERS):
        if reach <= bound:
            return tier
    return len(keys.TIERS) - 1


def public_store(record: dict[str, Any], entry: StoreEntry | None = None) -> dict[str, Any]:
    """Return a store record for API answers."""
    out = {k: record[k] for k in ("id", "name", "brand", "city", "lat", "lon", "address")}
    out["opening_hours"] = record.get("opening_hours")
    out["fence"] = record["fence"]
    out["updated_at"] = record.get("updated_at")
    return out


class CatalogChanges:
    """A process-local count of catalog writes, for caches of the catalog in this process.

    Every catalog write in this process bumps it once the write is in Redis, so a fence cache
    that sees the count move rechecks the catalog version before its next use: a process sees
    its own writes at once, and other processes' writes within their check interval
    (GEO_CATALOG_CHECK_MS). The default instance is shared by every catalog of the process; a
    test that plays two processes gives each its own.
    """

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Return how many writes this process made so far."""
        return self._count

    def bump(self) -> None:
        """Record one write."""
        with self._lock:
            self._count += 1


LOCAL_CHANGES = CatalogChanges()


@dataclass
class ImportReport:
    """What a bulk import did, or would have done."""

    received: int
    written: int
    errors: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able dict."""
        return {
            "received": self.received,
            "written": self.written,
            "rejected": len(self.errors),
            "errors": self.errors,
        }


class StoreCatalog:
    """The store catalog on Redis: one hash of records plus GEO and paging indexes."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        *,
        fence_max_offset_m: float = FENCE_MAX_OFFSET_M,
        changes: CatalogChanges = LOCAL_CHANGES,
    ) -> None:
        self.r = r
        self.clock = clock
        self.fence_max_offset_m = fence_max_offset_m
        self.changes = changes

    # -- reads ---------------------------------------------------------------------------
    def get(self, store_id: str) -> dict[str, Any]:
        """Return one store or raise NotFound."""
        raw = self.r.hget(keys.STORES, store_id)
        if raw is None:
            raise NotFound(f"no store {store_id!r}", code="store_not_found", field="store_id")
        return json.loads(raw)

    def get_many(self, store_ids: list[str]) -> list[dict[str, Any] | None]:
        """Return stores by id (None where missing)."""
        if not store_ids:
            return []
        return [json.loads(v) if v else None for v in self.r.hmget(keys.STORES, store_ids)]

    def exists(self, store_id: str) -> bool:
        """Tell whether a store exists."""
        return bool(self.r.hexists(keys.STORES, store_id))

    def version(self) -> int:
        """Return the catalog version (bumped by every change)."""
        return int(self.r.get(keys.VERSION) or 0)

    def load_all(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """Return the catalog version and every record, read together."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(keys.VERSION)
        pipe.hgetall(keys.STORES)
        version, raw = pipe.execute()
        return int(version or 0), {k: json.loads(v) for k, v in raw.items()}

    def list(
        self,
        *,
        city: str | None = None,
        brand: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        open_now: bool = False,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Page through stores in id order, optionally of one city and/or brand, and/or open
        now (at `now`, the catalog's clock by default). Each item says whether it is open now.
        """
        now = self.clock.now() if now is None else now
        hours_cache: dict[str, Hours] = {}
        index = keys.by_city(city) if city else keys.by_brand(brand) if brand else keys.IDS
        # With both filters the city index is paged and the brand checked per record; open_now
        # is checked per record too.
        brand_filter = brand.lower() if (city and brand) else None
        filtered = bool(brand_filter or open_now)
        chunk = 500 if filtered else limit + 1
        start = f"({cursor}" if cursor else "-"
        items: list[dict[str, Any]] = []
        more = False
        while not more:
            ids = self.r.zrangebylex(index, start, "+", start=0, num=chunk)
            for record in self.get_many(ids):
                if record is None or (brand_filter and record["brand"].lower() != brand_filter):
                    continue
                entry = entry_from_record(record, hours_cache)
                is_open = entry.hours.is_open_ts(now) if entry.hours is not None else True
                if open_now and not is_open:
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append({**public_store(record), "open_now": is_open})
            if len(ids) < chunk:
                break
            start = f"({ids[-1]}"
        return {
            "items": items,
            "next_cursor": items[-1]["id"] if more else None,
            "total": None if filtered else self.r.zcard(index),
        }

    def nearby(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        *,
        limit: int = 50,
        brand: str | None = None,
        open_now: bool = False,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Return stores within a radius, nearest first, with geodesic distances."""
        now = self.clock.now() if now is None else now
        count = limit * 4 if (brand or open_now) else limit
        while True:
            found = self.r.geosearch(
                keys.STORE_LOC,
                longitude=lon,
                latitude=lat,
                radius=radius_m * 1.01 + 1,
                unit="m",
                sort="ASC",
                count=count,
                withdist=True,
            )
            out = self._nearby_items(found, lat, lon, radius_m, brand, open_now, now)
            # The filters may drop most candidates (a brand behind many others): widen the
            # search until enough are left or the circle holds no more stores.
            if len(out) >= limit or len(found) < count:
                return out[:limit]
            count *= 4

    def _nearby_items(
        self,
        found: list,
        lat: float,
        lon: float,
        radius_m: float,
        brand: str | None,
        open_now: bool,
        now: float,
    ) -> list[dict[str, Any]]:
        if not found:
            return []
        records = self.get_many([member for member, _ in found])
        out = []
        for record in records:
            if record is None:
                continue
            if brand and record["brand"].lower() != brand.lower():
                continue
            distance = geodesic_m(lat, lon, record["lat"], record["lon"])
            if distance > radius_m:
                continue
            entry = entry_from_record(record)
            is_open = entry.hours.is_open_ts(now) if entry.hours is not None else True
            if open_now and not is_open:
                continue
            item = public_store(record)
            item["distance_m"] = round(distance, 1)
            item["open_now"] = is_open
            out.append(item)
        out.sort(key=lambda item: item["distance_m"])
        return out

    # -- writes --------------------------------------------------------------------------
    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and add a new store; its id must be free."""
        record = validate_store(data, max_offset_m=self.fence_max_offset_m)
        self._write([record], must_be_new=True)
        return public_store(record)

    def replace(self, store_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and replace an existing store."""
        data = dict(data)
        if data.get("id") not in (None, store_id):
            raise ValidationFailed("id in the body differs from the path", field="id")
        data["id"] = store_id
        record = validate_store(data, max_offset_m=self.fence_max_offset_m)
        self._write([record], must_exist=True)
        return public_store(record)

    def update(self, store_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a partial update, revalidating the whole store."""
        current = self.get(store_id)
        merged = {
            k: current[k]
            for k in ("name", "brand", "city", "lat", "lon", "address", "opening_hours", "fence")
        }
        merged.update({k: v for k, v in patch.items()})
        merged["id"] = store_id
        fence = current["fence"]
        moved = (merged["lat"], merged["lon"]) != (current["lat"], current["lon"])
        if (
            moved
            and "fence" not in patch
            and fence.get("type") == "circle"
            and fence.get("center") == [current["lon"], current["lat"]]
        ):
            # A circle around the store point moves with the store (the stored form always
            # carries a center, so without this it would stay behind at the old point).
            merged["fence"] = {k: v for k, v in fence.items() if k != "center"}
        return self.replace(store_id, merged)

    def delete(self, store_id: str) -> None:
        """Remove a store, its fence and its index entries."""
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(keys.STORES)
                    raw = pipe.hget(keys.STORES, store_id)
                    if raw is None:
                        raise NotFound(
                            f"no store {store_id!r}", code="store_not_found", field="store_id"
                        )
                    old = json.loads(raw)
                    pipe.multi()
                    self._unindex(pipe, old)
                    pipe.hdel(keys.STORES, store_id)
                    pipe.incr(keys.VERSION)
                    try:
                        pipe.execute()
                    finally:
                        self.changes.bump()  # also when unsure whether it committed
                    return
                except redis.WatchError:
                    continue

    def _write(
        self,
        records: list[dict[str, Any]],
        *,
        must_be_new: bool = False,
        must_exist: bool = False,
    ) -> None:
        """Write records and their indexes in one transaction (all or nothing)."""
        now = self.clock.now()
        ids = [r["id"] for r in records]
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(keys.STORES)
                    olds = pipe.hmget(keys.STORES, ids)
                    if must_be_new and any(o is not None for o in olds):
                        raise Conflict(f"store {ids[0]!r} exists", code="store_exists", field="id")
                    if must_exist and any(o is None for o in olds):
                        raise NotFound(
                            f"no store {ids[0]!r}", code="store_not_found", field="store_id"
                        )
                    pipe.multi()
                    for record, old in zip(records, olds, strict=True):
                        if old is not None:
                            self._unindex(pipe, json.loads(old))
                        record["updated_at"] = round(now, 3)
                        self._index(pipe, record)
                    pipe.hset(
                        keys.STORES,
                        mapping={r["id"]: json.dumps(r, separators=(",", ":")) for r in records},
                    )
                    pipe.incr(keys.VERSION)
                    try:
                        pipe.execute()
                    finally:
                        self.changes.bump()  # also when unsure whether it committed
                    return
                except redis.WatchError:
                    continue

    @staticmethod
    def _index(pipe, record: dict[str, Any]) -> None:
        sid = record["id"]
        pipe.zadd(keys.IDS, {sid: 0})
        pipe.zadd(keys.by_city(record["city"]), {sid: 0})
        pipe.zadd(keys.by_brand(record["brand"]), {sid: 0})
        pipe.geoadd(keys.STORE_LOC, (record["lon"], record["lat"], sid))

    @staticmethod
    def _unindex(pipe, record: dict[str, Any]) -> None:
        sid = record["id"]
        pipe.zrem(keys.IDS, sid)
        pipe.zrem(keys.by_city(record["city"]), sid)
        pipe.zrem(keys.by_brand(record["brand"]), sid)
        pipe.zrem(keys.STORE_LOC, sid)

    # -- bulk ----------------------------------------------------------------------------
    def import_rows(
        self,
        rows: Iterable[tuple[str, dict[str, Any] | Exception]],
        *,
        partial: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Validate every row first, then write them all together (or, if partial, the good ones).

        Each row comes with its label ("line 7", "features[3]") or a parse error for it.
        `progress(phase, done, total)`, if given, is told of every row validated ("validate",
        total None for rows without a length) and of the stores written ("write"): the write
        phase starts with a call of done=0, so a caller knows when writing begins.
        """
        good: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        received = 0
        expected = len(rows) if isinstance(rows, Sized) else None
        for label, item in rows:
            received += 1
            if progress is not None:
                progress("validate", received, expected)
            if received > MAX_IMPORT:
                raise ValidationFailed(
                    f"at most {MAX_IMPORT} stores per import", code="import_too_large", field="file"
                )
            if isinstance(item, Exception):
                errors.append(
                    {"at": label, "field": getattr(item, "field", None), "reason": str(item)}
                )
                continue
            try:
                record = validate_store(item, max_offset_m=self.fence_max_offset_m)
            except ValidationFailed as exc:
                errors.append({"at": label, "field": exc.field, "reason": exc.message})
                continue
            if record["id"] in seen:
                reason = f"duplicate id {record['id']!r} (also {seen[record['id']]})"
                errors.append({"at": label, "field": "id", "reason": reason})
                continue
            seen[record["id"]] = label
            good.append(record)
        if received == 0:
            raise ValidationFailed("the file holds no stores", code="empty_import", field="file")
        if errors and not partial:
            return ImportReport(received, 0, errors)
        if good:
            if progress is not None:
                progress("write", 0, len(good))
            for start in range(0, len(good), 5_000):
                self._write(good[start : start + 5_000])
                if progress is not None:
                    progress("write", min(start + 5_000, len(good)), len(good))
        return ImportReport(received, len(good), errors)

    def export_csv_rows(
        self, *, city: str | None = None, brand: str | None = None
    ) -> tuple[int, Iterator[list[Any]]]:
        """Return how many stores there are to export and the CSV rows (the header first) in
        the form parse_csv reads back: hours and fence as JSON, tz left empty (the hours
        carry it)."""
        _, records = self.load_all()
        chosen = [
            records[sid]
            for sid in sorted(records)
            if (not city or records[sid]["city"].lower() == city.lower())
            and (not brand or records[sid]["brand"].lower() == brand.lower())
        ]

        def rows() -> Iterator[list[Any]]:
            yield list(CSV_COLUMNS)
            for record in chosen:
                hours = record.get("opening_hours")
                yield [
                    record["id"],
                    record["name"],
                    record["brand"],
                    record["city"],
                    record["lat"],
                    record["lon"],
                    record.get("address") or "",
                    "",
                    json.dumps(hours, separators=(",", ":")) if hours is not None else "",
                    json.dumps(record["fence"], separators=(",", ":")),
                ]

        return len(chosen), rows()

    def map_pins(self) -> dict[str, Any]:
        """Return every store in the compact form a map needs (id, name, brand, city, point,
        stored fence), in id order, with the catalog version they were read at."""
        version, records = self.load_all()
        items = [
            {k: records[sid][k] for k in ("id", "name", "brand", "city", "lat", "lon", "fence")}
            for sid in sorted(records)
        ]
        return {"version": version, "items": items}

    def export_geojson(self, *, city: str | None = None, brand: str | None = None) -> dict:
        """Return the stores (optionally of one city/brand) as a GeoJSON FeatureCollection."""
        _, records = self.load_all()
        features = []
        for sid in sorted(records):
            record = records[sid]
            if city and record["city"].lower() != city.lower():
                continue
            if brand and record["brand"].lower() != brand.lower():
                continue
            fence = fence_from_dict(record["fence"])
            props = {k: record[k] for k in ("id", "name", "brand", "city", "address")}
            props["opening_hours"] = record.get("opening_hours")
            props["fence"] = record["fence"]
            features.append(
                {
                    "type": "Feature",
                    "id": sid,
                    "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
                    "properties": props,
                }
            )
            fence_geom = (
                fence.to_polygon_geojson() if fence.kind == "circle" else fence.to_geojson()
            )
            features.append(
                {
                    "type": "Feature",
                    "id": f"{sid}#fence",
                    "geometry": fence_geom,
                    "properties": {
                        "store_id": sid,
                        "role": "fence",
                        "kind": fence.kind,
                        "always_active": fence.always_active,
                        **(
                            {"radius_m": record["fence"].get("radius_m")}
                            if fence.kind == "circle"
                            else {}
                        ),
                    },
                }
            )
        return {"type": "FeatureCollection", "features": features}


# -- import parsers ------------------------------------------------------------------------
class RowError(ValueError):
    """A row that could not even be read into a store."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


def _json_cell(text: str, column: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # the latter for deeply nested arrays or objects
        raise RowError(f"column {column!r} is not valid JSON", field=column) from None


def _number_cell(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"column {column!r} is not a number: {text!r}", field=column) from None
    if not math.isfinite(value):
        raise RowError(f"column {column!r} is not a finite number", field=column)
    return value


def parse_csv(text: str) -> list[tuple[str, dict[str, Any] | Exception]]:
    """Read stores from CSV (header id,name,brand,city,lat,lon,address,tz,hours,fence).

    `hours` and `fence` hold JSON; an empty `hours` means always open (or open 24/7 in `tz`),
    an empty `fence` means a 100 m circle. Rows are labelled by their line number.
    """
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _read_csv(reader)
    except csv.Error as exc:  # e.g. a cell over the csv module's 128 KiB field limit
        raise ValidationFailed(
            f"line {reader.line_num}: unreadable CSV ({exc})", code="invalid_csv", field="file"
        ) from None


def _read_csv(reader: csv.DictReader) -> list[tuple[str, dict[str, Any] | Exception]]:
    header = reader.fieldnames or []
    missing = [c for c in ("name", "brand", "city", "lat", "lon") if c not in header]
    if missing:
        raise ValidationFailed(
            f"CSV header lacks columns: {', '.join(missing)}", code="invalid_csv", field="file"
        )
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise ValidationFailed(
            f"CSV header has unknown columns: {', '.join(unknown)}",
            code="invalid_csv",
            field="file",
        )
    rows: list[tuple[str, dict[str, Any] | Exception]] = []
    for row in reader:
        label = f"line {reader.line_num}"
        try:
            if None in row:
                raise RowError("row has more cells than the header")
            item: dict[str, Any] = {
                "name": row.get("name") or "",
                "brand": row.get("brand") or "",
                "city": row.get("city") or "",
                "lat": _number_cell(row.get("lat") or "", "lat"),
                "lon": _number_cell(row.get("lon") or "", "lon"),
                "address": row.get("address") or "",
            }
            if row.get("id"):
                item["id"] = row["id"]
            if row.get("hours"):
                item["opening_hours"] = _json_cell(row["hours"], "hours")
            elif row.get("tz"):
                item["opening_hours"] = {"tz": row["tz"], "always": True}
            if row.get("fence"):
                item["fence"] = _json_cell(row["fence"], "fence")
            rows.append((label, item))
        except RowError as exc:
            rows.append((label, exc))
    return rows


def parse_geojson(doc: Any) -> list[tuple[str, dict[str, Any] | Exception]]:
    """Read stores from an RFC 7946 FeatureCollection of Point features ([lon, lat])."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ValidationFailed(
            "expected a GeoJSON FeatureCollection", code="invalid_geojson", field="type"
        )
    features = doc.get("features")
    if not isinstance(features, list):
        raise ValidationFailed("features must be a list", code="invalid_geojson", field="features")
    rows: list[tuple[str, dict[str, Any] | Exception]] = []
    for index, feature in enumerate(features):
        label = f"features[{index}]"
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise RowError("not a Feature", field="type")
            geometry = feature.get("geometry") or {}
            coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                raise RowError("geometry must be a Point [lon, lat]", field="geometry")
            props = feature.get("properties") or {}
            if not isinstance(props, dict):
                raise RowError("properties must be an object", field="properties")
            item = {k: v for k, v in props.items()}
            if "lon" in item or "lat" in item:
                raise RowError(
                    "lat/lon come from the geometry, not the properties", field="properties"
                )
            item["lon"], item["lat"] = coords[0], coords[1]
            if "id" not in item and isinstance(feature.get("id"), str):
                item["id"] = feature["id"]
            rows.append((label, item))
        except RowError as exc:
            rows.append((label, exc))
    return rows
