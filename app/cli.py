"""flask CLI commands for bulk work (README "Command line").

    flask stores import FILE | stores export -o FILE      flask users create | users import FILE
    flask campaigns export-coupons | export-ledger CID    flask demo seed
    flask keys rotate | keys rotate-secret                flask geo replay --from ID
    flask sweep                                           (create-user, seed-demo: older names)

Each shows progress (cli_support.Bar) and ends with a summary line. Ctrl-C never leaves a
half-written file or import: exports go to a temporary file renamed at the end; store imports
validate everything and then write, with Ctrl-C deferred until the write is done; a bulk user
import validates every row first and then writes one account at a time, stopping between two
accounts on Ctrl-C (run it again to finish: accounts already created are recognised).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
import secrets
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from core.csvfile import SafeWriter
from core.errors import DomainError, ValidationFailed
from geo import keys as geo_keys
from geo.stores import parse_csv, parse_geojson
from promotions.codes import KEY_ID, parse_keys
from promotions.consumer import REPLAY_MAX_AGE_S

from .auth import ROLES, check_new_user
from .cli_support import Bar, Interrupts, atomic_output, interrupted

USER_COLUMNS = ("email", "role", "password", "display_name", "store_id")
STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def register(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    for group in (stores_group, campaigns_group, users_group, demo_group, keys_group, geo_group):
        app.cli.add_command(group)
    app.cli.add_command(sweep_cmd)
    # The names of earlier releases (scripts and the README's deployment notes use them).
    app.cli.add_command(create_user, "create-user")
    app.cli.add_command(demo_seed, "seed-demo")


def _fail(exc: DomainError) -> click.ClickException:
    return click.ClickException(f"{exc.code}: {exc.message}")


def _read_text(file: str) -> str:
    with click.open_file(file, "rb") as fh:
        data = fh.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"invalid_encoding: {file} is not UTF-8") from None


def _write_progress(stop: Interrupts, bar: Bar):
    """Return a progress callback that shields the rest of the command once writing starts."""

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "write" and done == 0:
            stop.enter_shield()
        bar(phase, done, total)

    return progress


# -- stores ----------------------------------------------------------------------------------
stores_group = AppGroup("stores", help="Import and export the store catalog.")


@stores_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "kind",
    type=click.Choice(["csv", "geojson"]),
    default=None,
    help="csv or geojson; by default from the file name (.csv, else GeoJSON)",
)
@click.option(
    "--partial",
    is_flag=True,
    help="write the good rows even when some are bad (the exit status is still 1)",
)
def stores_import(file: str, kind: str | None, partial: bool) -> None:
    """Import stores from CSV or a GeoJSON FeatureCollection, as POST /api/stores/import does:
    every row is validated first and nothing is written if any row is bad."""
    kind = kind or ("csv" if file.lower().endswith(".csv") else "geojson")
    text = _read_text(file)
    try:
        if kind == "csv":
            rows = parse_csv(text)
        else:
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                raise click.ClickException(f"malformed_json: {file} is not valid JSON") from None
            rows = parse_geojson(doc)
    except ValidationFailed as exc:
        raise _fail(exc) from None
    with Interrupts() as stop, Bar("stores import") as bar:
        try:
            report = current_app.extensions["stores"].import_rows(
                rows, partial=partial, progress=_write_progress(stop, bar)
            )
        except ValidationFailed as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt:
            interrupted("nothing was written")
    for error in report.errors:
        click.echo(f"{error['at']}: {error['field'] or '-'}: {error['reason']}", err=True)
    if report.written:  # one audit entry per import, as the API writes it
        current_app.extensions["audit"].record(
            f"cli:{getpass.getuser()}",
            "import",
            "store",
            "",
            None,
            {
                "format": kind,
                "partial": partial,
                "received": report.received,
                "written": report.written,
                "rejected": len(report.errors),
            },
        )
    if stop.pending:
        click.echo("interrupt: arrived while writing; the import was finished first", err=True)
    tail = "; nothing was written" if report.errors and not report.written else ""
    click.echo(
        f"stores import: {report.received} received, {report.written} written, "
        f"{len(report.errors)} refused{tail}"
    )
    if report.errors:
        click.get_current_context().exit(1)


@stores_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option(
    "--format",
    "kind",
    type=click.Choice(["geojson", "csv"]),
    default=None,
    help="by default from the output's name (.csv, else GeoJSON)",
)
@click.option("--city", default=None, help="only the stores of one city")
@click.option("--brand", default=None, help="only the stores of one brand")
def stores_export(output: str, kind: str | None, city: str | None, brand: str | None) -> None:
    """Export stores as GeoJSON (points and fences, as GET /api/stores/export.geojson) or as
    CSV in the import's columns (re-importable)."""
    kind = kind or ("csv" if output.lower().endswith(".csv") else "geojson")
    catalog = current_app.extensions["stores"]
    if kind == "csv":
        total, rows = catalog.export_csv_rows(city=city, brand=brand)
        written = _export_csv(output, "stores export", total, rows)
    else:
        features = catalog.export_geojson(city=city, brand=brand)["features"]
        written = _export_features(output, "stores export", features) // 2
    click.echo(f"stores export: {written} stores written to {output} ({kind})")


def _export_csv(output: str, name: str, total: int, rows) -> int:
    """Write CSV rows (header first, formulas defused) to `output` whole or not at all;
    return how many rows after the header were written."""
    written = 0
    with Interrupts(), Bar(name) as bar:
        try:
            with atomic_output(Path(output)) as fh:
                writer = SafeWriter(fh)
                writer.writerow(next(rows))
                bar("write", 0, total)
                for row in rows:
                    writer.writerow(row)
                    written += 1
                    bar("write", written, max(total, written))
        except KeyboardInterrupt:
            interrupted(f"{output} was not written")
    return written


def _export_features(output: str, name: str, features: list[dict[str, Any]]) -> int:
    """Write a GeoJSON FeatureCollection, feature by feature, whole or not at all."""
    with Interrupts(), Bar(name) as bar:
        try:
            with atomic_output(Path(output)) as fh:
                fh.write('{"type":"FeatureCollection","features":[')
                bar("write", 0, len(features))
                for i, feature in enumerate(features):
                    fh.write(("," if i else "") + "\n" + json.dumps(feature, separators=(",", ":")))
                    bar("write", i + 1, len(features))
                fh.write("\n]}\n")
        except KeyboardInterrupt:
            interrupted(f"{output} was not written")
    return len(features)


# -- campaigns -------------------------------------------------------------------------------
campaigns_group = AppGroup("campaigns", help="Export a campaign's coupons and ledger.")


@campaigns_group.command("export-coupons")
@click.argument("campaign_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
def export_coupons(campaign_id: str, output: str) -> None:
    """Export every coupon of a campaign as CSV (formula-escaped): terms, status, redemption."""
    try:
        total, rows = current_app.extensions["promotions"].coupons.csv_rows(campaign_id)
    except DomainError as exc:
        raise _fail(exc) from None
    written = _export_csv(output, "coupons export", total, rows)
    click.echo(f"campaigns export-coupons: {written} coupons of campaign {campaign_id} in {output}")


@campaigns_group.command("export-ledger")
@click.argument("campaign_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
def export_ledger(campaign_id: str, output: str) -> None:
    """Export a campaign's ledger (issue, redeem, void, expiry, status entries) as CSV."""
    try:
        total, rows = current_app.extensions["promotions"].reports.ledger_csv(campaign_id)
    except DomainError as exc:
        raise _fail(exc) from None
    written = _export_csv(output, "ledger export", total, rows)
    click.echo(f"campaigns export-ledger: {written} entries of campaign {campaign_id} in {output}")


# -- users -----------------------------------------------------------------------------------
users_group = AppGroup("users", help="Create accounts one by one or in bulk.")


@users_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r for r in ROLES if r != "guest"]), required=True)
@click.option("--store", "store_id", default=None, help="the store a staff account serves")
@click.option("--name", "display_name", default=None)
@click.password_option(envvar="FOOTFALL_NEW_PASSWORD")
def create_user(email, role, store_id, display_name, password):
    """Create an account of any role (staff need --store)."""
    if store_id and not current_app.extensions["stores"].exists(store_id):
        raise click.ClickException(f"no store {store_id!r}")
    try:
        user = current_app.extensions["accounts"].create_user(
            email, password, role, display_name=display_name, store_id=store_id
        )
    except DomainError as exc:
        raise _fail(exc) from None
    click.echo(f"created {user['role']} {user['email']} id={user['id']}")


@users_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def users_import(file: str) -> None:
    """Create accounts from CSV (columns email,role,password[,display_name][,store_id]).

    Every row is checked first; if any is bad nothing is written. An account that exists
    with the same email, role and store is left as it is (so a run stopped by Ctrl-C can be
    run again); with another role or store it is a refused row.
    """
    text = _read_text(file)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("email", "role", "password") if c not in header]
    unknown = [c for c in header if c not in USER_COLUMNS]
    if missing or unknown:
        problem = f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}"
        raise click.ClickException(f"invalid_csv: the header {problem}")
    accounts = current_app.extensions["accounts"]
    catalog = current_app.extensions["stores"]
    plan: list[tuple[str, str, str, str | None, str | None]] = []
    errors: list[tuple[str, str, str]] = []
    existing = 0
    seen: dict[str, str] = {}
    with Interrupts(), Bar("users import") as bar:
        try:
            try:
                rows = [(f"line {reader.line_num}", row) for row in reader]
            except csv.Error as exc:
                raise click.ClickException(f"invalid_csv: {exc}") from None
            for n, (label, row) in enumerate(rows, 1):
                bar("validate", n, len(rows))
                try:
                    if None in row:
                        raise ValidationFailed("row has more cells than the header", field="row")
                    store_id = (row.get("store_id") or "").strip() or None
                    role = (row.get("role") or "").strip()
                    password = row["password"] or ""
                    email = check_new_user(row["email"] or "", password, role, store_id)
                    if store_id and not catalog.exists(store_id):
                        raise ValidationFailed(f"no store {store_id!r}", field="store_id")
                    if email in seen:
                        raise ValidationFailed(f"repeated (also {seen[email]})", field="email")
                    seen[email] = label
                    found = accounts.find_by_email(email)
                    if found is not None:
                        if found["role"] != role or (found.get("store_id") or None) != store_id:
                            raise ValidationFailed(
                                f"an account with this email exists (as {found['role']})",
                                field="email",
                            )
                        existing += 1
                        continue
                except ValidationFailed as exc:
                    errors.append((label, exc.field or "-", exc.message))
                    continue
                name = (row.get("display_name") or "").strip() or None
                plan.append((email, row["password"], role, name, store_id))
        except KeyboardInterrupt:
            interrupted("nothing was written")
    if errors:
        for label, field, message in errors:
            click.echo(f"{label}: {field}: {message}", err=True)
        click.echo(
            f"users import: {len(rows)} received, 0 created, {len(errors)} refused; "
            "nothing was written"
        )
        click.get_current_context().exit(1)
    created = _create_accounts(accounts, plan)
    click.echo(
        f"users import: {len(rows)} received, {created} created, {existing} existed already, "
        "0 refused"
    )


def _create_accounts(accounts, plan) -> int:
    """Create the checked accounts one at a time; Ctrl-C stops between two accounts."""
    created = 0
    with Interrupts() as stop, Bar("users import") as bar:
        bar("write", 0, len(plan))
        try:
            for email, password, role, name, store_id in plan:
                record = accounts.user_record(email, password, role, name, store_id)
                with stop.shielded():  # the record and its email index go together
                    accounts.add_user(record)
                created += 1
                bar("write", created, len(plan))
                if stop.pending:
                    raise KeyboardInterrupt
        except DomainError as exc:  # an email taken since the check
            raise click.ClickException(
                f"{exc.code}: {exc.message}; {created} of {len(plan)} accounts were created, "
                "run the command again to create the rest"
            ) from None
        except KeyboardInterrupt:
            interrupted(
                f"{created} of {len(plan)} accounts were created; run the same command again "
                "to create the rest (the accounts already created are left as they are)"
            )
    return created


# -- demo data -------------------------------------------------------------------------------
demo_group = AppGroup("demo", help="Demo data.")


@demo_group.command("seed")
@click.option("--stores", default=5000, show_default=True)
def demo_seed(stores: int) -> None:
    """Load the demo stores, accounts, campaign, game and live stream (idempotent)."""
    from .demo import seed_demo

    with Interrupts() as stop, Bar("demo seed") as bar:
        try:
            result = seed_demo(current_app, stores=stores, progress=_write_progress(stop, bar))
        except KeyboardInterrupt:
            interrupted("no store was written; run the command again (it is idempotent)")
    click.echo(
        f"demo seed: {result['stores_written']} stores written ({result['stores_total']} in "
        f"the demo), {len(result['accounts_created'])} accounts created, campaign "
        f"{result['campaign']['id']} ({result['campaign']['status']}), staff store "
        f"{result['staff_store']}"
    )


# -- signing keys ----------------------------------------------------------------------------
keys_group = AppGroup("keys", help="Rotate signing keys (prints new settings; stores nothing).")


@keys_group.command("rotate")
@click.option("--kid", default=None, help="the new key's id (default: k<n>, n one above the ids)")
@click.option("--drop", multiple=True, help="a key id to stop accepting (repeatable)")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="write the setting to this file (mode 0600) instead of printing it",
)
def keys_rotate(kid: str | None, drop: tuple[str, ...], output: str | None) -> None:
    """Make a new coupon signing key: print COUPON_SIGNING_KEYS with it first (it signs new
    coupons) and the current keys after it (coupons they signed keep verifying).

    With COUPON_SIGNING_KEYS unset, the current key is the one derived from SECRET_KEY
    (id k0): it is kept, with its value, so coupons issued so far stay valid.
    """
    current = list(current_app.extensions["promotions"].codec.keys)
    ids = [k for k, _ in current]
    unknown = [k for k in drop if k not in ids]
    if unknown:
        raise click.ClickException(f"no key {', '.join(unknown)} (keys: {', '.join(ids)})")
    if kid is None:
        numbers = [int(m.group(1)) for k in ids if (m := re.fullmatch(r"k(\d+)", k))]
        kid = f"k{max(numbers, default=len(ids) - 1) + 1}"
    if not KEY_ID.match(kid) or kid in ids:
        raise click.ClickException(f"key id {kid!r} is taken or not 1-16 letters/digits/_/-")
    kept = [(k, s) for k, s in current if k not in drop]
    keys = [(kid, secrets.token_urlsafe(32).encode()), *kept]
    value = ",".join(f"{k}:{s.decode()}" for k, s in keys)
    parse_keys(value)  # the form the app reads back
    _emit_settings({"COUPON_SIGNING_KEYS": value}, output)
    click.echo(
        f"keys rotate: {kid} signs new coupons; verifying {', '.join(k for k, _ in keys)}"
        + (f"; dropped {', '.join(drop)} (coupons it signed stop verifying)" if drop else "")
        + '. Set it in every process\'s environment and restart them (README "Command line").',
        err=True,
    )


@keys_group.command("rotate-secret")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="write the settings to this file (mode 0600) instead of printing them",
)
def keys_rotate_secret(output: str | None) -> None:
    """Make a new SECRET_KEY (it signs sign-in tokens and game spawn references).

    Tokens signed with the old key stop verifying: everyone signs in again. When coupons are
    signed with the key derived from SECRET_KEY (COUPON_SIGNING_KEYS unset), that key is
    printed too, as COUPON_SIGNING_KEYS=k0:..., so coupons issued so far stay valid.
    """
    settings = {"SECRET_KEY": secrets.token_urlsafe(48)}
    if not current_app.config.get("COUPON_SIGNING_KEYS"):
        # The codec holds the one key config.coupon_keys derived from the current SECRET_KEY.
        codec = current_app.extensions["promotions"].codec
        settings["COUPON_SIGNING_KEYS"] = ",".join(f"{k}:{s.decode()}" for k, s in codec.keys)
    _emit_settings(settings, output)
    click.echo(
        f"keys rotate-secret: new {', '.join(settings)}; sign-in tokens signed with the old "
        "SECRET_KEY stop verifying (everyone signs in again) once every process has it.",
        err=True,
    )


def _emit_settings(settings: dict[str, str], output: str | None) -> None:
    text = "".join(f"{name}={value}\n" for name, value in settings.items())
    if output is None:
        click.echo(text, nl=False)
        return
    with atomic_output(Path(output), mode=0o600) as fh:
        fh.write(text)
    click.echo(f"written to {output} (mode 0600)", err=True)


# -- geo events ------------------------------------------------------------------------------
geo_group = AppGroup("geo", help="Geofence events and exits.")


@geo_group.command("replay")
@click.option(
    "--from",
    "start",
    required=True,
    help="the stream entry id to start at (included), e.g. 1780000000000-0, or a time in ms",
)
@click.option("--until", "end", default=None, help="the last entry id to replay (included)")
@click.option("--partition", type=int, default=None, help="one partition (default: all)")
@click.option("--dry-run", is_flag=True, help="count the events only; handle none")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000))
def geo_replay(
    start: str, end: str | None, partition: int | None, dry_run: bool, batch: int
) -> None:
    """Feed geo events from a stream offset through the promotions consumer again (visits
    and coupons; handling is idempotent by event id, so events handled before count once)."""
    for name, value in (("--from", start), ("--until", end)):
        if value is not None and not STREAM_ID.match(value):
            raise click.ClickException(f"{name} must be a stream entry id such as 1780000000000-0")
    promotions = current_app.extensions["promotions"]
    partitions = promotions.event_partitions
    if partition is not None and not 0 <= partition < partitions:
        raise click.ClickException(f"--partition must be between 0 and {partitions - 1}")
    streams = geo_keys.event_streams(partitions)
    if partition is not None:
        streams = [streams[partition]]
    r = current_app.extensions["redis"]
    consumer = promotions.consumer(name="cli-replay")
    events, visits, unreadable, too_old = 0, 0, 0, 0
    coupons: dict[str, int] = {}
    kinds: dict[str, int] = {}
    reached: dict[str, str] = {}
    with Interrupts(), Bar("geo replay") as bar:
        bar("partitions", 0, len(streams))
        try:
            for done, stream in enumerate(streams, 1):
                low = start
                while True:
                    entries = r.xrange(stream, min=low, max=end or "+", count=batch)
                    if not entries:
                        break
                    if dry_run:
                        for _, fields in entries:
                            kind = _event_kind(fields)
                            kinds[kind] = kinds.get(kind, 0) + 1
                        events += len(entries)
                    else:
                        report = consumer.replay(entries)
                        events += report.events
                        visits += report.visits
                        unreadable += report.unreadable
                        too_old += report.too_old
                        for outcome, count in report.coupons.items():
                            coupons[outcome] = coupons.get(outcome, 0) + count
                    reached[stream] = entries[-1][0]
                    low = f"({entries[-1][0]}"
                bar("partitions", done, len(streams))
        except KeyboardInterrupt:
            where = ", ".join(f"{s} at {i}" for s, i in reached.items()) or "no event"
            interrupted(
                f"{events} events replayed ({where}); handling is idempotent, so running "
                "the command again with the same --from finishes it"
            )
    if dry_run:
        counted = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        click.echo(f"geo replay (dry run): {events} events, {len(streams)} partitions ({counted})")
        return
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(coupons.items())) or "none"
    click.echo(
        f"geo replay: {events} events from {len(streams)} partitions, {visits} new visits "
        f"counted, coupons: {outcomes}"
        + (f", {unreadable} unreadable" if unreadable else "")
        + (f", {too_old} too old to replay (over {REPLAY_MAX_AGE_S // 3600} h)" if too_old else "")
    )


def _event_kind(fields: dict[str, str]) -> str:
    try:
        return str(json.loads(fields["event"]).get("kind"))
    except (KeyError, ValueError, AttributeError):
        return "unreadable"


@click.command("sweep")
@with_appcontext
def sweep_cmd() -> None:
    """Confirm geofence exits whose confirmation time has passed."""
    events = current_app.extensions["geo"].sweep()
    click.echo(f"{len(events)} exits confirmed")
