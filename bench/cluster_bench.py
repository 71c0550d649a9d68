"""Cluster benchmark: the same HTTP load on a single Valkey server and on a Valkey Cluster of 3
masters with a replica each, in the same run, then a failover under load.

For each mode (single, cluster) the benchmark starts its own store (an `EmbeddedRedis`, or an
`EmbeddedCluster` of 3 masters + 3 replicas; AOF on in both) and two gunicorn processes
(`-k gevent -w 1`, production mode) on it, and measures through both processes:

- `issue_per_s`: `POST /api/campaigns/<cid>/offers/<oid>/issue` (manual issuance, every cap
  checked, none reached) from keep-alive sessions in two load processes — promo_bench's
  `run_http_load` in its worker `Pool`, one process per server;
- `fixes_per_s`: `POST /api/location/fix` from geo_bench's raw-socket load generator
  (`run_load`), shoppers on simulated walks among generated stores, half on each server.

Then, on the cluster, with `REDIS_WAIT_REPLICAS=1` (two new server processes): a steady load of
coupon issuance, redemptions and live drop claims (tests/money_load.py, the load of
tests/test_cluster_failover.py); the master that holds the campaign is killed with SIGKILL, its
replica is promoted, and the dead node is started again (it rejoins as a replica, as a process
supervisor would restart it). `failover_unavailable_s` is the time from the first failed answer
(503 or a refused connection) to the first success after the last failure; afterwards every
acknowledged coupon, redemption and drop win is looked up in Redis (`lost_acknowledged`) and
the caps are counted (`oversell`).

Progress goes to stderr; the last line of stdout is one JSON object (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.geo_bench import (  # noqa: E402
    SECRET_KEY,
    http_start_time,
    make_http_shoppers,
    make_walkers,
    run_load,
    send_one_fix,
)
from bench.live_bench import make_setup_app, worker_of  # noqa: E402
from bench.promo_bench import CAP_HIGH, Pool, make_campaign, sleep_until  # noqa: E402
from bench.promo_bench import add_stores as add_promo_stores  # noqa: E402

PASSWORD = "bench-password-1"
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[cluster-bench {time.monotonic() - _STARTED:7.2f}s] {message}", file=sys.stderr)


def start_store(mode: str, tmp: Path, args):
    """Start the mode's store: one server, or 3 masters with a replica each (AOF on in both)."""
    from app.redis_supervisor import EmbeddedCluster, EmbeddedRedis, free_port

    if mode == "single":
        return EmbeddedRedis(tmp / "single", free_port(), appendonly=True).start()
    return EmbeddedCluster(
        tmp / "cluster", node_timeout_ms=args.node_timeout_ms, appendonly=True
    ).start()


def shoppers_for_issue(app, n: int) -> tuple[list[str], str]:
    """n shopper accounts and a marketer's token (names apart from geo_bench's shoppers)."""
    accounts = app.extensions["accounts"]
    marketer = accounts.create_user("cluster-bench-marketer@example.test", PASSWORD, "marketer")
    ids = [
        accounts.create_user(f"cluster-bench-{i}@example.test", PASSWORD, "shopper")["id"]
        for i in range(n)
    ]
    return ids, accounts.open_session(marketer)["token"]


def store_procs(store) -> list:
    """psutil handles of the store's server processes (one, or every cluster node)."""
    import psutil

    nodes = getattr(store, "nodes", None) or [store]
    return [psutil.Process(node.process.pid) for node in nodes if node.process is not None]


def cpu_of(procs: list) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def measure_issue(
    pool: Pool, servers, redis_procs, cid, oid, token, shoppers, stores, args, mode, n=0
) -> dict:
    """promo_bench's HTTP issuance load, one load process per server, counted in the window."""
    start_at = time.time() + 1.0
    threads = max(1, args.http_clients // len(servers))
    specs = [
        {
            "base": server.url,
            "cid": cid,
            "oid": oid,
            "token": token,
            "shoppers": shoppers,
            "stores": stores,
            "run": f"{mode}-{n}-{k}",  # idempotency keys new in every round
            "seed": args.seed,
            "threads": threads,
            "start_at": start_at,
            "warmup": args.http_warmup,
            "duration": args.http_duration,
            "procs": len(servers),
            "server_pids": [],
        }
        for k, server in enumerate(servers)
    ]
    for q, spec in zip(pool.queues, specs, strict=False):
        q.put(("http", spec))
    workers = [worker_of(server) for server in servers]
    sleep_until(start_at + args.http_warmup)
    cpu0, redis0 = cpu_of(workers), cpu_of(redis_procs)
    sleep_until(start_at + args.http_warmup + args.http_duration)
    cpu, redis_cpu = cpu_of(workers) - cpu0, cpu_of(redis_procs) - redis0
    out = [pool.get(args.http_duration + 120.0) for _ in specs]
    failed = [o["error"] for o in out if "error" in o]
    if failed:
        raise RuntimeError(f"http task failed in a load process:\n{failed[0]}")
    statuses: dict[str, int] = {}
    errors: list[str] = []
    lat: list[float] = []
    for o in out:
        for code, n in o["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
        errors += o["errors"]
        lat += o["lat_ms"]
    lat.sort()
    ok = statuses.get("201", 0)
    res = {
        "per_s": ok / args.http_duration,
        # CPU of both gunicorn workers per issued coupon: what the servers pay per request,
        # hardly moved by other programs taking the CPU (unlike the rate).
        "server_cpu_ms_per_request": round(cpu * 1000 / ok, 3) if ok else None,
        # ... and of every Valkey process (the cluster's replicas included).
        "redis_cpu_ms_per_request": round(redis_cpu * 1000 / ok, 3) if ok else None,
        "cpu_share": {
            "servers": round(cpu / args.http_duration, 2),
            "redis": round(redis_cpu / args.http_duration, 2),
        },
        "statuses": statuses,
        "p50_ms": round(lat[len(lat) // 2], 2) if lat else 0.0,
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else 0.0,
    }
    if errors:
        res["errors"] = errors[:3]
    log(
        f"{mode}: issue {res['per_s']:,.0f}/s, p50 {res['p50_ms']} ms, CPU per request: servers "
        f"{res['server_cpu_ms_per_request']} ms, valkey {res['redis_cpu_ms_per_request']} ms; "
        f"cores busy {res['cpu_share']}; statuses {statuses}"
    )
    return res


def measure_fixes(servers, redis_procs, walkers, tokens, tmp: Path, args, rng, mode) -> dict:
    """geo_bench's fix load against both servers at once (half of the shoppers each)."""
    for server in servers:
        send_one_fix(server.port, tokens[0], walkers[0], rng)  # each worker's cold fence cache
    shoppers = [[tok, w.to_list()] for tok, w in zip(tokens, walkers, strict=True)]
    results: list[dict | BaseException] = [None, None]  # type: ignore[list-item]

    def one(k: int) -> None:
        part = tmp / f"{mode}-load{k}"
        part.mkdir(exist_ok=True)
        try:
            results[k] = run_load(
                "fix",
                servers[k].port,
                part,
                args,
                args.http_duration,
                {"server": worker_of(servers[k])}
                | {f"redis{i}": p for i, p in enumerate(redis_procs)},
                shoppers[k :: len(servers)],
            )
        except BaseException as exc:  # reported below
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for res in results:
        if isinstance(res, BaseException):
            raise res
    per_s = sum(res["per_s"] for res in results)  # type: ignore[index]
    statuses: dict[str, int] = {}
    for res in results:
        for code, n in res["statuses"].items():  # type: ignore[index]
            statuses[code] = statuses.get(code, 0) + n
    p50 = max(res["p50_ms"] for res in results)  # type: ignore[index]
    cpu_ms = [res["server_cpu_ms_per_request"] for res in results]  # type: ignore[index]
    cpu = round(sum(cpu_ms) / len(cpu_ms), 3) if all(cpu_ms) else None
    # Both load runs watched every Valkey process over the same window: one of them suffices.
    redis_share = sum(v for k, v in results[0]["cpu"].items() if k.startswith("redis")) / 100
    redis_ms = round(redis_share * 1000 / per_s, 3) if per_s else None
    log(
        f"{mode}: fixes {per_s:,.0f}/s (200s), p50 ≤ {p50} ms, CPU per request: a server "
        f"{cpu} ms, valkey {redis_ms} ms; statuses {statuses}"
    )
    return {
        "per_s": per_s,
        "statuses": statuses,
        "p50_ms": p50,
        "server_cpu_ms_per_request": cpu,
        "redis_cpu_ms_per_request": redis_ms,
    }


def prepare(mode: str, tmp: Path, args) -> dict:
    """Start the mode's store and two servers on it, with stores, shoppers and a campaign."""
    from app.sinks import redis_connect
    from core.clock import Clock
    from geo import keys as geo_keys
    from geo.demo import generate_stores
    from geo.stores import StoreCatalog
    from tests.test_processes import start_servers

    rng = random.Random(args.seed)
    here = tmp / mode
    here.mkdir()
    store = start_store(mode, here, args)
    ctx = {"mode": mode, "store": store, "servers": [], "here": here, "rng": rng}
    log(f"{mode}: store up at {store.url}")
    r = redis_connect(store.url, decode_responses=True)
    try:
        geo_stores = generate_stores(args.stores)
        report = StoreCatalog(r, Clock()).import_rows(
            (f"stores[{i}]", dict(s)) for i, s in enumerate(geo_stores)
        )
        if report.written != len(geo_stores):
            raise RuntimeError(f"store import failed: {report.to_dict()['errors'][:3]}")
        app = make_setup_app(store.url, here, SECRET_KEY)  # geo_bench's, as its shoppers'
        ctx["promo_stores"] = add_promo_stores(app.extensions["stores"], args.promo_stores)
        ctx["shoppers"], ctx["token"] = shoppers_for_issue(app, args.issue_shoppers)
        ctx["cid"], ctx["oid"] = make_campaign(
            app.extensions["promotions"],
            f"cluster bench {mode}",
            total=CAP_HIGH,
            per_shopper=10_000,  # as promo_bench: every cap checked, none reached
            per_shopper_day=10_000,
            per_store_day=CAP_HIGH,
            budget_count=CAP_HIGH,
        )
        app.extensions["redis"].close()
        t0 = http_start_time(time.time())
        ctx["walkers"] = make_walkers(geo_stores, args.http_shoppers, rng, t0, args.nanjing_share)
        ctx["tokens"] = make_http_shoppers(store.url, here, ctx["walkers"], args, rng)
        for k in range(
            geo_keys.EVENT_PARTITIONS
        ):  # simulated-time deadlines, long past (geo_bench)
            r.delete(geo_keys.pending_exits(k))
        ctx["servers"] = start_servers(store.url, 2, {"SECRET_KEY": SECRET_KEY})
        ctx["redis_procs"] = store_procs(store)
        log(f"{mode}: two gunicorn processes on {[s.url for s in ctx['servers']]}")
    except BaseException:
        release(ctx)
        raise
    finally:
        r.close()
    return ctx


def release(ctx: dict, keep_store: bool = False) -> None:
    """Stop the mode's servers (and its store unless kept)."""
    from tests.test_processes import stop_servers

    stop_servers(ctx["servers"])
    ctx["servers"] = []
    if not keep_store:
        ctx["store"].stop()


def combine(rounds: list[dict]) -> dict:
    """Add up the rounds of one measurement: rates averaged, statuses summed, CPU averaged."""
    out: dict = {"per_s": sum(r["per_s"] for r in rounds) / len(rounds), "rounds": []}
    statuses: dict[str, int] = {}
    for r in rounds:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
        out["rounds"].append(round(r["per_s"], 1))
    out["statuses"] = statuses
    for key in ("server_cpu_ms_per_request", "redis_cpu_ms_per_request", "p50_ms"):
        values = [r[key] for r in rounds if r.get(key) is not None]
        out[key] = round(sum(values) / len(values), 3) if values else None
    return out


def run_modes(tmp: Path, args) -> tuple[dict, object]:
    """Both modes up at once, measured in alternation (single, cluster, single, ...), so that
    what else runs on the machine weighs on both alike. Returns the figures and the cluster
    (left running for the failover part)."""
    contexts = []
    pool = None
    try:
        for mode in ("single", "cluster"):
            contexts.append(prepare(mode, tmp, args))
        # promo_bench's load processes; an HTTP task does not use their Redis client.
        pool = Pool(2, contexts[0]["store"].url)
        issue: dict[str, list] = {"single": [], "cluster": []}
        fixes: dict[str, list] = {"single": [], "cluster": []}
        for n in range(args.rounds):
            for ctx in contexts:
                issue[ctx["mode"]].append(
                    measure_issue(
                        pool,
                        ctx["servers"],
                        ctx["redis_procs"],
                        ctx["cid"],
                        ctx["oid"],
                        ctx["token"],
                        ctx["shoppers"],
                        ctx["promo_stores"],
                        args,
                        ctx["mode"],
                        n,
                    )
                )
            for ctx in contexts:
                part = ctx["here"] / f"round{n}"
                part.mkdir()
                fixes[ctx["mode"]].append(
                    measure_fixes(
                        ctx["servers"],
                        ctx["redis_procs"],
                        ctx["walkers"],
                        ctx["tokens"],
                        part,
                        args,
                        ctx["rng"],
                        ctx["mode"],
                    )
                )
    except BaseException:
        for ctx in contexts:
            release(ctx)
        raise
    finally:
        if pool is not None:
            pool.close()
    release(contexts[0])
    release(contexts[1], keep_store=True)
    figures = {
        mode: {"issue": combine(issue[mode]), "fixes": combine(fixes[mode])}
        for mode in ("single", "cluster")
    }
    return figures, contexts[1]["store"]


def run_failover(cluster, tmp: Path, args) -> dict:
    """Kill the master of the campaign under a money load with replica waits on; count."""
    from promotions import keys as pkeys
    from tests.money_load import audit, close_world, make_world, start_load
    from tests.servers import wait_for
    from tests.test_processes import start_servers, stop_servers

    env = {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "300", "RETRY_AFTER_S": "1"}
    servers = start_servers(cluster.url, 2, env)
    world = load = None
    try:
        (tmp / "failover").mkdir()
        quantity = args.drop_quantity
        world = make_world(
            cluster.url, [s.url for s in servers], tmp / "failover", max(2 * quantity, 12)
        )
        cap = args.failover_cap
        load = start_load(world, cap, quantity, "failover")
        load.allow(args.failover_cap // 3, claims=quantity - 2)
        wait_for(
            lambda: load.acknowledged() >= args.failover_cap // 4, 30, "the load before the kill"
        )
        victim = world["redis"].get_node_from_key(pkeys.meta(world["cid"])).port
        (replica,) = cluster.replicas_of(victim)
        killed = time.monotonic()
        cluster.kill(victim, hard=True)
        log(f"failover: killed master {victim} (SIGKILL) under load; replica {replica}")
        load.allow(10**9)
        wait_for(lambda: cluster.roles().get(replica) == "master", 30, "the promotion")
        promoted = time.monotonic() - killed
        cluster.revive(victim)  # a supervisor's restart: it rejoins as the new master's replica
        wait_for(lambda: load.successes_since(killed), 60, "answers after the failover")
        served = time.monotonic() - killed
        load.finish(120)
        found = audit(world["redis"], load, cap=cap, drop_quantity=quantity)
    finally:
        if load is not None:
            load.close()
        if world is not None:
            close_world(world)
        stop_servers(servers)
    log(
        f"failover: promoted after {promoted:.2f}s, served again {served:.2f}s after the kill; "
        f"unavailable {found['unavailable_s']}s; lost {found['lost']}; oversell "
        f"{found['oversell']}; answers {found['answers']}"
    )
    return {**found, "promoted_after_s": round(promoted, 2), "served_after_s": round(served, 2)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run (the figures mean little)")
    p.add_argument("--http-duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of each mode")
    p.add_argument("--http-warmup", type=float, default=1.0)
    p.add_argument("--http-clients", type=int, default=32, help="issuance sessions in all")
    p.add_argument("--connections", type=int, default=64, help="fix connections per server")
    p.add_argument("--load-procs", type=int, default=1, help="fix load processes per server")
    p.add_argument("--stores", type=int, default=2_000, help="generated stores (fences)")
    p.add_argument("--promo-stores", type=int, default=20)
    p.add_argument("--issue-shoppers", type=int, default=200)
    p.add_argument("--http-shoppers", type=int, default=1_000, help="walking shoppers")
    p.add_argument("--backlog", type=int, default=6, help="buffered fixes per shopper first")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--nanjing-share", type=float, default=0.3)
    p.add_argument("--node-timeout-ms", type=int, default=1000, help="cluster-node-timeout")
    p.add_argument("--failover-cap", type=int, default=150, help="coupons of the failover offer")
    p.add_argument("--drop-quantity", type=int, default=10, help="the failover's drop")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if args.quick:
        args.http_duration, args.http_warmup, args.rounds = 2.0, 0.5, 1
        args.http_clients, args.connections = 8, 8
        args.stores, args.promo_stores, args.issue_shoppers = 100, 3, 10
        args.http_shoppers, args.backlog, args.failover_cap = 30, 2, 40
        args.drop_quantity = 4
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):  # clean up the servers on SIGTERM as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))

    cluster = None
    try:
        figures, cluster = run_modes(tmp, args)
        failover = run_failover(cluster, tmp, args)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else 0.0

    issue_s, issue_c = figures["single"]["issue"]["per_s"], figures["cluster"]["issue"]["per_s"]
    fix_s, fix_c = figures["single"]["fixes"]["per_s"], figures["cluster"]["fixes"]["per_s"]
    result = {
        "bench": "cluster",
        "issue_per_s_single": round(issue_s, 1),
        "issue_per_s_cluster": round(issue_c, 1),
        "cluster_ratio": ratio(issue_c, issue_s),
        "fixes_per_s_single": round(fix_s, 1),
        "fixes_per_s_cluster": round(fix_c, 1),
        "fix_cluster_ratio": ratio(fix_c, fix_s),
        "failover_unavailable_s": failover["unavailable_s"],
        "lost_acknowledged": len(failover["lost"]),
        "oversell": failover["oversell"],
    }
    details = {
        "quick": args.quick,
        "duration_s": args.http_duration,
        "rounds": args.rounds,
        "single": figures["single"],
        "cluster": figures["cluster"],
        "failover": {
            k: failover[k]
            for k in (
                "acknowledged",
                "issued",
                "cap",
                "winners",
                "claimed",
                "drop_quantity",
                "answers",
                "failures",
                "promoted_after_s",
                "served_after_s",
                "lost",
            )
        },
    }
    log(json.dumps(details))
    # The last line is exactly the figures the issue names, in its order.
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
