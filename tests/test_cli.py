"""The bulk commands (app/cli.py): stores, campaigns, users, demo, keys, geo replay; progress,
summaries, refusals, and Ctrl-C leaving nothing half written."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest
from redis.cluster import RedisCluster

from app.cli_support import Bar, atomic_output
from core.audit import KEY as AUDIT_KEY
from geo import keys as geo_keys
from promotions.codes import CouponCodec, parse_keys

from .conftest import T0
from .promo_helpers import add_stores, append_geo_event, issue, live_campaign, staff
from .servers import REPO_ROOT, SECRET_KEY, wait_for

STORES_CSV = (
    "id,name,brand,city,lat,lon,address,tz,hours,fence\r\n"
    "s-1,=HYPERLINK(1),Acme,Shanghai,31.23,121.47,1 Road,Asia/Shanghai,,\r\n"
    's-2,Two,Acme,Shanghai,31.24,121.48,,,"{""tz"": ""Asia/Shanghai"", ""weekly"": '
    '{""mon"": [[""10:00"", ""22:00""]]}}","{""type"": ""circle"", ""radius_m"": 60}"\r\n'
    "s-3,Three,Bolt,Beijing,39.9,116.4,,,,\r\n"
)


def lines_of(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_stores_import_refusal_import_and_exports(app, runner, redis_client, tmp_path):
    catalog = app.extensions["stores"]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,name,brand,city,lat,lon\r\nok-1,Fine,Acme,Shanghai,31.2,121.4\r\n"
        "x-2,Bad,Acme,Shanghai,200,121.4\r\nx-3,Worse,Acme,Shanghai,north,121.4\r\n"
    )
    result = runner.invoke(args=["stores", "import", str(bad)])
    assert result.exit_code == 1
    assert "line 3: lat: " in result.output and "line 4: lat: column 'lat' is not a number" in (
        result.output
    )
    assert "3 received, 0 written, 2 refused; nothing was written" in result.output
    assert redis_client.hlen(geo_keys.STORES) == 0  # all or nothing, as the API

    good = tmp_path / "stores.csv"
    good.write_text(STORES_CSV)
    result = runner.invoke(args=["stores", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "stores import: validate 0/3" not in result.output  # validation counts from 1
    assert "stores import: validate 3/3" in result.output  # plain progress (not a terminal)
    assert "stores import: write 3/3" in result.output
    assert result.output.splitlines()[-1] == "stores import: 3 received, 3 written, 0 refused"
    assert catalog.get("s-2")["fence"]["radius_m"] == 60
    audit = redis_client.xrange(AUDIT_KEY)
    assert [(e["actor"].split(":")[0], e["action"], e["kind"]) for _, e in audit] == [
        ("cli", "import", "store")
    ]

    geojson = tmp_path / "more.geojson"
    geojson.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [121.5, 31.25]},
                        "properties": {"id": "g-1", "name": "Geo", "brand": "Acme", "city": "X"},
                    },
                    {"type": "Feature", "geometry": {"type": "LineString"}, "properties": {}},
                ],
            }
        )
    )
    result = runner.invoke(args=["stores", "import", str(geojson), "--partial"])
    assert result.exit_code == 1  # a row was refused, though the good one was written
    assert "features[1]: geometry: geometry must be a Point" in result.output
    assert "2 received, 1 written, 1 refused" in result.output
    assert catalog.exists("g-1")

    out = tmp_path / "export" / "stores.csv"
    out.parent.mkdir()
    result = runner.invoke(args=["stores", "export", "-o", str(out), "--brand", "acme"])
    assert result.exit_code == 0, result.output
    assert "stores export: 3 stores written to" in result.output
    rows = lines_of(out)
    assert rows[0] == [
        "id",
        "name",
        "brand",
        "city",
        "lat",
        "lon",
        "address",
        "tz",
        "hours",
        "fence",
    ]
    assert [r[0] for r in rows[1:]] == ["g-1", "s-1", "s-2"]
    assert rows[2][1] == "'=HYPERLINK(1)"  # formula defused
    assert os.listdir(out.parent) == ["stores.csv"]  # no temporary file left

    # The CSV export reads back through the import: the same stores, fences and hours.
    before = {sid: catalog.get(sid) for sid in ("g-1", "s-2")}
    for sid in ("g-1", "s-1", "s-2"):
        catalog.delete(sid)
    result = runner.invoke(args=["stores", "import", str(out)])
    assert result.exit_code == 0, result.output
    for sid, record in before.items():
        again = catalog.get(sid)
        assert {k: again[k] for k in ("lat", "lon", "fence", "opening_hours", "name")} == {
            k: record[k] for k in ("lat", "lon", "fence", "opening_hours", "name")
        }

    geo_out = tmp_path / "export" / "stores.geojson"
    result = runner.invoke(args=["stores", "export", "-o", str(geo_out), "--city", "beijing"])
    assert result.exit_code == 0, result.output
    doc = json.loads(geo_out.read_text())
    assert doc["type"] == "FeatureCollection"
    assert [f["id"] for f in doc["features"]] == ["s-3", "s-3#fence"]
    assert doc["features"][0]["geometry"]["coordinates"] == [116.4, 39.9]


def test_campaign_coupon_and_ledger_exports(app, runner, tmp_path):
    promos = app.extensions["promotions"]
    stores = add_stores(app.extensions["stores"], n=2)
    cid, oid = live_campaign(promos)
    promos.tick()
    kept = issue(promos, cid, oid, shopper="=cmd|'/c calc'!A1").coupon
    used = issue(promos, cid, oid, shopper="u2").coupon
    promos.coupons.redeem(promos.codec.token(used["id"]), 5000, "order-7", staff(stores[0]))

    out = tmp_path / "coupons.csv"
    result = runner.invoke(args=["campaigns", "export-coupons", cid, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "coupons export: write 2/2" in result.output
    assert f"2 coupons of campaign {cid}" in result.output.splitlines()[-1]
    rows = lines_of(out)
    head = rows[0]
    by_id = {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert by_id[kept["id"]]["shopper_id"] == "'=cmd|'/c calc'!A1"  # formula defused
    assert by_id[kept["id"]]["status"] == "issued"
    assert by_id[used["id"]]["status"] == "redeemed"
    assert by_id[used["id"]]["order_ref"] == "order-7"
    assert by_id[used["id"]]["redeemed_store_id"] == stores[0]
    assert by_id[used["id"]]["discount_fen"] == "2000"

    ledger = tmp_path / "ledger.csv"
    result = runner.invoke(args=["campaigns", "export-ledger", cid, "-o", str(ledger)])
    assert result.exit_code == 0, result.output
    rows = lines_of(ledger)
    types = [dict(zip(rows[0], r, strict=True))["type"] for r in rows[1:]]
    assert types == ["status", "status", "issue", "issue", "redeem"]
    redeem = dict(zip(rows[0], rows[-1], strict=True))
    assert redeem["coupon"] == used["id"] and redeem["basket_fen"] == "5000"
    assert redeem["at_utc"].startswith("2026-05-28T")
    assert f"5 entries of campaign {cid}" in result.output

    result = runner.invoke(args=["campaigns", "export-ledger", "999", "-o", str(ledger)])
    assert result.exit_code == 1 and "not_found" in result.output.lower()
    assert lines_of(ledger)[-1] == rows[-1]  # the earlier export is untouched


def test_bulk_user_import_checks_everything_first_and_can_be_run_again(app, runner, tmp_path):
    accounts = app.extensions["accounts"]
    add_stores(app.extensions["stores"], n=1)
    accounts.create_user("old@example.test", "long-enough-1", "host")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,role,password,store_id\n"
        "a@example.test,marketer,long-enough-1,\n"
        "b@example.test,staff,short,acme-0\n"
        "c@example.test,staff,long-enough-1,nowhere\n"
        "A@example.test,host,long-enough-1,\n"
        "old@example.test,admin,long-enough-1,\n"
    )
    result = runner.invoke(args=["users", "import", str(bad)])
    assert result.exit_code == 1
    for expected in (
        "line 3: password: password needs at least 8 characters",
        "line 4: store_id: no store 'nowhere'",
        "line 5: email: repeated (also line 2)",
        "line 6: email: an account with this email exists (as host)",
        "5 received, 0 created, 4 refused; nothing was written",
    ):
        assert expected in result.output
    assert accounts.find_by_email("a@example.test") is None

    good = tmp_path / "users.csv"
    good.write_text(
        "email,role,password,display_name,store_id\n"
        "a@example.test,marketer,long-enough-1,Ann,\n"
        "b@example.test,staff,long-enough-2,,acme-0\n"
        "old@example.test,host,whatever-it-is,,\n"
    )
    result = runner.invoke(args=["users", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "users import: write 2/2" in result.output
    assert "3 received, 2 created, 1 existed already, 0 refused" in result.output
    staff_user = accounts.find_by_email("b@example.test")
    assert (staff_user["role"], staff_user["store_id"]) == ("staff", "acme-0")
    assert accounts.login("a@example.test", "long-enough-1", "127.0.0.1")["user"][
        "display_name"
    ] == ("Ann")
    # A second run (e.g. after Ctrl-C stopped the first) creates nothing twice.
    emails = ("a@example.test", "b@example.test", "old@example.test")
    ids = [accounts.find_by_email(e)["id"] for e in emails]
    result = runner.invoke(args=["users", "import", str(good)])
    assert "3 received, 0 created, 3 existed already" in result.output
    assert [accounts.find_by_email(e)["id"] for e in emails] == ids

    result = runner.invoke(
        args=["users", "create", "h@example.test", "--role", "host", "--password", "long-enough-3"]
    )
    assert result.exit_code == 0 and "created host h@example.test" in result.output


def test_key_rotation_prints_settings_and_keeps_old_coupons_valid(
    app, runner, tmp_path, redis_client
):
    codec = app.extensions["promotions"].codec  # the key derived from SECRET_KEY, k0
    old_token = codec.token("1-1")
    keys_before = redis_client.dbsize()

    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    setting = next(line for line in result.output.splitlines() if line.startswith("COUPON_"))
    keys = parse_keys(setting.removeprefix("COUPON_SIGNING_KEYS="))
    assert [k for k, _ in keys] == ["k1", "k0"]
    rotated = CouponCodec(keys)
    assert rotated.verify(old_token).coupon_id == "1-1"  # issued coupons stay valid
    assert rotated.token("1-2").split(".")[1] == "k1"  # new coupons are signed with k1
    assert "k1 signs new coupons; verifying k1, k0" in result.output

    out = tmp_path / "keys.env"
    result = runner.invoke(args=["keys", "rotate", "--kid", "spring", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "COUPON_SIGNING_KEYS=" not in result.output  # the secret went to the file only
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [k for k, _ in parse_keys(out.read_text().strip().split("=", 1)[1])] == ["spring", "k0"]

    result = runner.invoke(args=["keys", "rotate", "--drop", "k0"])
    assert result.exit_code == 0
    assert "dropped k0" in result.output
    setting = next(line for line in result.output.splitlines() if line.startswith("COUPON_"))
    assert [k for k, _ in parse_keys(setting.split("=", 1)[1])] == ["k1"]
    assert runner.invoke(args=["keys", "rotate", "--drop", "k9"]).exit_code == 1

    result = runner.invoke(args=["keys", "rotate-secret"])
    assert result.exit_code == 0
    settings = dict(
        line.split("=", 1)
        for line in result.output.splitlines()
        if line[:1].isupper() and "=" in line
    )
    assert len(settings["SECRET_KEY"]) >= 32 and settings["SECRET_KEY"] != app.config["SECRET_KEY"]
    pinned = CouponCodec(parse_keys(settings["COUPON_SIGNING_KEYS"]))
    assert pinned.verify(old_token).coupon_id == "1-1"  # coupons survive the new SECRET_KEY
    assert redis_client.dbsize() == keys_before  # nothing was stored


def test_geo_replay_feeds_the_consumer_again_idempotently(app, runner):
    promos = app.extensions["promotions"]
    store = add_stores(app.extensions["stores"], n=1)[0]
    cid, _ = live_campaign(promos, visit_trigger="enter")
    promos.tick()
    r = app.extensions["redis"]
    for n in range(3):
        append_geo_event(r, f"shopper-{n}", store, "enter", T0 + n)
    append_geo_event(r, "shopper-0", store, "exit", T0 + 5)
    append_geo_event(r, "shopper-9", store, "enter", T0 - 3 * 86_400)  # its seen set may be gone
    first = min(
        r.xrange(stream, count=1)[0][0] for stream in geo_keys.event_streams() if r.xlen(stream)
    )

    result = runner.invoke(args=["geo", "replay", "--from", "0", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "geo replay (dry run): 5 events, 16 partitions (enter 4, exit 1)"
    )
    assert promos.reports.analytics(cid)["funnel"]["visits"] == 0

    result = runner.invoke(args=["geo", "replay", "--from", first])
    assert result.exit_code == 0, result.output
    assert "geo replay: partitions 16/16" in result.output
    assert result.output.splitlines()[-1] == (
        "geo replay: 5 events from 16 partitions, 3 new visits counted, coupons: 3 issued, "
        "1 too old to replay (over 71 h)"
    )
    funnel = promos.reports.analytics(cid)["funnel"]
    assert (funnel["visits"], funnel["coupons"]) == (3, 3)

    one = geo_keys.partition("shopper-1", 16)
    result = runner.invoke(args=["geo", "replay", "--from", "0", "--partition", str(one)])
    assert "new visits" in result.output and "0 new visits counted" in result.output
    assert "coupons: 1 existing" in result.output  # the first issuance comes back
    assert promos.reports.analytics(cid)["funnel"]["coupons"] == 3

    assert runner.invoke(args=["geo", "replay", "--from", "yesterday"]).exit_code == 1
    assert runner.invoke(args=["geo", "replay", "--from", "0", "--partition", "16"]).exit_code == 1


def test_demo_seed_and_the_older_command_names(app, runner, redis_client):
    result = runner.invoke(args=["demo", "seed", "--stores", "100"])
    assert result.exit_code == 0, result.output
    assert "demo seed: write 100/100" in result.output
    assert result.output.splitlines()[-1].startswith(
        "demo seed: 100 stores written (100 in the demo), 5 accounts created, campaign "
    )
    assert redis_client.hlen(geo_keys.STORES) == 100
    result = runner.invoke(args=["seed-demo", "--stores", "100"])  # the older name; idempotent
    assert "demo seed: 0 stores written (100 in the demo), 0 accounts created" in result.output
    assert app.cli.commands["create-user"] is app.cli.commands["users"].commands["create"]
    assert runner.invoke(args=["sweep"]).output == "0 exits confirmed\n"


def test_an_interrupted_export_leaves_no_file_and_the_old_one_whole(tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as fh:
        fh.write("new, partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["out.csv"] and target.read_text() == "old\n"
    with Bar("demo", tty=True) as bar:  # a terminal gets rich's bar
        bar("write", 5, 10)
    assert "demo: write" in capsys.readouterr().out


def test_ctrl_c_during_a_store_import_never_leaves_part_of_it(redis_server, redis_client, tmp_path):
    """SIGINT while the import writes (held at its first transaction by CLIENT PAUSE WRITE):
    the import finishes, all 6,000 stores; never some of them."""
    rows = ["id,name,brand,city,lat,lon"] + [
        f"b-{i:05d},Store {i},Acme,Shanghai,{30 + i / 10_000:.4f},121.4" for i in range(6_000)
    ]
    big = tmp_path / "big.csv"
    big.write_text("\n".join(rows) + "\n")
    env = {
        **os.environ,
        "REDIS_URL": redis_server,
        "SECRET_KEY": SECRET_KEY,
        "FOOTFALL_VAR_DIR": str(tmp_path / "var"),
        "SOCKETIO_MESSAGE_QUEUE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    # Writes wait (on every master of a cluster); reads go on.
    nodes = {"target_nodes": "primaries"} if isinstance(redis_client, RedisCluster) else {}
    redis_client.client_pause(60_000, all=False, **nodes)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "stores", "import", str(big)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []

        def read() -> None:
            for line in proc.stdout:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_for(
            lambda: any("stores import: write 0/6000" in line for line in lines),
            30,
            lambda: f"the import to start writing; output: {''.join(lines)}",
        )
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: any("finishing the write" in line for line in lines), 10, "the deferral")
        assert redis_client.hlen(geo_keys.STORES) == 0
    finally:
        redis_client.client_unpause(**nodes)
    assert proc.wait(timeout=60) == 0
    reader.join(timeout=10)
    proc.stdout.close()
    output = "".join(lines)
    assert "the import was finished first" in output
    assert "6000 received, 6000 written, 0 refused" in output
    assert redis_client.hlen(geo_keys.STORES) == 6_000
