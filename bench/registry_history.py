"""The police search at a moment on a national registry's history: 350,000 cameras with 30
days of intervals each in PostgreSQL. Reports what the history costs per camera-day and
how fast the search at T (and over two hours, and along a route) answers.

Fills, by COPY straight into a new database (created and dropped on the server given):
- `cameras`: bench/registry_search.py's cameras (towns, views, DORI), each with its open
  intervals (registry/ingest/intervals.py) as ingest leaves them;
- `camera_intervals`: per camera, 30 days of closed state intervals (--changes per day on
  average, Poisson; statuses ok 85 %, degraded 8 %, failed 3 %, offline 4 %; problem bits
  for the others) and recording runs cut by --gaps per day (each a run row and a gap
  row of 10-600 s). Rows are written in binary COPY format built with numpy.

Then times registry.police.search_at.search_at (what POST /api/v1/search calls) on random
points around the towns at random moments of the 30 days, over 2-hour ranges, and
search_route on 10-point routes. Target: p95 at T < 100 ms.

    PYTHONPATH=. python3 bench/registry_history.py [--server postgresql://postgres@127.0.0.1/postgres]
        [--cameras 350000] [--days 30] [--changes 4] [--gaps 0.5] [--queries 300] [--seed 1]

Exits 1 when the target is missed, 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg

from bench import harness
from bench.registry_search import camera_rows, percentile, town_point
from registry.db.engine import open_engine
from registry.ingest.intervals import KIND_GAP, KIND_RUN, KIND_STATE, problem_mask
from registry.police.search_at import RouteStop, search_at, search_route

TARGET_P95_MS = 100.0
DAY = 86400.0
STATUS_WEIGHTS = np.array([0.85, 0.08, 0.03, 0.04])  # ok, degraded, failed, offline
PROBLEM_CHOICES = np.array(
    [
        problem_mask(["too_dark"]),
        problem_mask(["blurred"]),
        problem_mask(["covered"]),
        problem_mask(["no_signal"]),
        problem_mask(["low_fps", "noisy"]),
    ],
    dtype=np.int64,
)
CHUNK = 20_000  # cameras per COPY chunk
ROUTE_POINTS = 10


def _field(name: str, kind: str) -> list[tuple[str, str]]:
    return [(f"{name}_len", ">i4"), (name, kind)]


# One binary COPY row: the field count, then each field's length and value.
STATE_ROW = np.dtype(
    [
        ("n", ">i2"),
        *_field("agent", "S12"),
        *_field("camera", "S5"),
        *_field("kind", ">i2"),
        *_field("start", ">f8"),
        *_field("end", ">f8"),
        *_field("status", ">i2"),
        *_field("problems", ">i4"),
    ]
)
# Runs and gaps have no status and no problems: NULL is length -1 and no bytes.
SPAN_ROW = np.dtype(
    [
        ("n", ">i2"),
        *_field("agent", "S12"),
        *_field("camera", "S5"),
        *_field("kind", ">i2"),
        *_field("start", ">f8"),
        *_field("end", ">f8"),
        ("status_len", ">i4"),
        ("problems_len", ">i4"),
    ]
)
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
COLUMNS = "agent_id, camera_id, kind, start_ts, end_ts, status, problems"


def _ids(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bench/registry_search.py's ids: 3 cameras per agent."""
    agents = np.char.add("bench-", np.char.zfill((index // 3).astype(str), 6)).astype("S12")
    cams = np.char.add("cam-", (index % 3).astype(str)).astype("S5")
    return agents, cams


def _fill_ids(rows: np.ndarray, camera_index: np.ndarray, kind: int) -> None:
    agents, cams = _ids(camera_index)
    rows["n"] = 7
    rows["agent_len"], rows["agent"] = 12, agents
    rows["camera_len"], rows["camera"] = 5, cams
    rows["kind_len"], rows["kind"] = 2, kind
    rows["start_len"], rows["end_len"] = 8, 8


def state_rows(
    first: int, count: int, start: float, now: float, per_day: float, rng: np.random.Generator
) -> np.ndarray:
    """Closed state intervals of cameras first..first+count: boundaries uniform in time."""
    days = (now - start) / DAY
    n = rng.poisson(per_day * days, count) + 1  # boundaries per camera (>= 1)
    camera = np.repeat(np.arange(first, first + count), n)
    times = rng.uniform(start, now - 60, camera.size)
    order = np.lexsort((times, camera))
    camera, times = camera[order], times[order]
    last = np.r_[camera[1:] != camera[:-1], True]  # a camera's last boundary opens its state
    rows = np.zeros(camera.size - count, dtype=STATE_ROW)
    keep = ~last
    _fill_ids(rows, camera[keep], KIND_STATE)
    rows["start"] = times[keep]
    rows["end"] = times[np.flatnonzero(keep) + 1]
    status = rng.choice(4, rows.size, p=STATUS_WEIGHTS)
    rows["status_len"], rows["status"] = 2, status
    rows["problems_len"] = 4
    rows["problems"] = np.where(status == 0, 0, rng.choice(PROBLEM_CHOICES, rows.size))
    return rows


def span_rows(
    first: int, count: int, start: float, now: float, per_day: float, rng: np.random.Generator
) -> np.ndarray:
    """Recorded runs, each ended by a gap: a run row and a gap row per gap."""
    days = (now - start) / DAY
    n = rng.poisson(per_day * days, count)
    camera = np.repeat(np.arange(first, first + count), n)
    gap_at = rng.uniform(start, now - 600, camera.size)
    order = np.lexsort((gap_at, camera))
    camera, gap_at = camera[order], gap_at[order]
    gap_end = gap_at + rng.uniform(10, 600, camera.size)
    new_camera = np.r_[True, camera[1:] != camera[:-1]]
    run_start = np.where(new_camera, start, np.r_[start, gap_end[:-1]])
    rows = np.zeros(camera.size * 2, dtype=SPAN_ROW)
    rows["status_len"], rows["problems_len"] = -1, -1
    runs, gaps = rows[0::2], rows[1::2]
    _fill_ids(runs, camera, KIND_RUN)
    _fill_ids(gaps, camera, KIND_GAP)
    runs["start"], runs["end"] = run_start, gap_at
    gaps["start"], gaps["end"] = gap_at, gap_end
    rows[0::2], rows[1::2] = runs, gaps
    return rows


@contextmanager
def new_database(server: str) -> Iterator[str]:
    name = f"camreg_bench_history_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise harness.SetupError(f"PostgreSQL is not reachable at {server}: {exc}") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill_cameras(url: str, count: int, now: float, seed: int) -> None:
    rng = random.Random(seed)
    columns = None
    with psycopg.connect(url) as db, db.cursor() as cursor:
        for batch in camera_rows(count, now, rng):
            if columns is None:
                columns = [
                    *batch[0],
                    "epoch_received",
                    "report_ts",
                    "state_start",
                    "state_code",
                    "state_problems",
                    "run_start",
                    "gap_count",
                    "gap_seconds",
                ]
                copy_sql = f"COPY cameras ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in batch:
                    opened = [now - rng.uniform(0, 60), now - rng.uniform(60, DAY), 0, 0]
                    recorded = [now - rng.uniform(0, DAY), 0, 0.0]
                    if row["footage_newest"] is None:
                        recorded = [None, None, None]
                    copy.write_row([*row.values(), 0, *opened, *recorded])


def fill_intervals(
    url: str, count: int, start: float, now: float, args: argparse.Namespace
) -> tuple[int, float, float]:
    """COPY the intervals, then build the indexes; rows, load seconds, index seconds."""
    rng = np.random.default_rng(args.seed)
    total = 0
    began = time.perf_counter()
    with psycopg.connect(url) as db, db.cursor() as cursor:
        indexes = cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'camera_intervals'"
        ).fetchall()
        cursor.execute(
            "SELECT string_agg(indexname, ', ') FROM pg_indexes "
            "WHERE tablename = 'camera_intervals'"
        )
        names = cursor.fetchone()[0]
        cursor.execute(f"DROP INDEX {names}")  # built once after the load, as a restore does
        for first in range(0, count, CHUNK):
            n = min(CHUNK, count - first)
            for rows in (
                state_rows(first, n, start, now, args.changes, rng),
                span_rows(first, n, start, now, args.gaps, rng),
            ):
                with cursor.copy(
                    f"COPY camera_intervals ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(HEADER + rows.tobytes() + TRAILER)
                total += rows.size
            print(f"\r  {first + n:,} cameras, {total:,} intervals", end="", flush=True)
        db.commit()
        print()
        loaded = time.perf_counter() - began
        began = time.perf_counter()
        for (definition,) in indexes:
            cursor.execute(definition)
        db.commit()
        db.autocommit = True
        cursor.execute("VACUUM ANALYZE camera_intervals")
        cursor.execute("VACUUM ANALYZE cameras")
    return total, loaded, time.perf_counter() - began


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT pg_table_size('camera_intervals'), pg_indexes_size('camera_intervals'), "
            "pg_total_relation_size('cameras'), pg_database_size(current_database())"
        ).fetchone()
    assert row is not None
    return dict(zip(("table", "indexes", "cameras", "database"), row, strict=True))


def measure(url: str, args: argparse.Namespace, now: float) -> dict[str, list[float]]:
    engine = open_engine(url)
    rng = random.Random(args.seed + 1)
    timings: dict[str, list[float]] = {
        "at": [],
        "at_seen": [],
        "range": [],
        "route": [],
        "found": [],
    }
    try:
        for index in range(args.warmup + args.queries):
            lat, lon = town_point(rng)
            moment = now - rng.uniform(60, args.days * DAY - 3 * 3600)
            began = time.perf_counter()
            found = search_at(engine, lat, lon, moment, now=now)
            at_ms = (time.perf_counter() - began) * 1000
            began = time.perf_counter()
            search_at(engine, lat, lon, moment, moment + 7200, now=now)
            range_ms = (time.perf_counter() - began) * 1000
            if index < args.warmup:
                continue
            timings["at"].append(at_ms)
            timings["range"].append(range_ms)
            timings["found"].append(len(found.cameras) + len(found.excluded))
            if found.cameras or found.excluded:
                timings["at_seen"].append(at_ms)
        for _ in range(max(10, args.queries // 10)):
            lat, lon = town_point(rng)
            moment = now - rng.uniform(3600, args.days * DAY - 3600)
            stops = []
            for step in range(ROUTE_POINTS):  # a walk: 50 m and a minute a step
                stops.append(
                    RouteStop(lat + step * 0.00045, lon, moment + 60 * step, moment + 60 * step)
                )
            began = time.perf_counter()
            search_route(engine, stops, now=now)
            timings["route"].append((time.perf_counter() - began) * 1000)
    finally:
        engine.dispose()
    return timings


def report(
    args: argparse.Namespace,
    rows: int,
    load_s: float,
    index_s: float,
    size: dict[str, int],
    timings: dict[str, list[float]],
) -> bool:
    camera_days = args.cameras * args.days
    p95 = percentile(timings["at"], 0.95)
    ok = p95 < TARGET_P95_MS
    mb = 1024 * 1024
    print()
    print(
        f"| history of {args.cameras:,} cameras x {args.days} days, PostgreSQL "
        "| measured | target |"
    )
    print("|---|---|---|")
    print(f"| intervals stored | {rows:,} ({rows / camera_days:.1f} per camera-day) | |")
    print(f"| camera_intervals table | {size['table'] / mb:,.0f} MB | |")
    print(f"| its indexes | {size['indexes'] / mb:,.0f} MB | |")
    per_day = (size["table"] + size["indexes"]) / camera_days
    print(f"| storage per camera-day | {per_day:.0f} bytes | |")
    print(f"| storage per camera, {args.days} days | {per_day * args.days / 1024:.1f} KiB | |")
    print(f"| cameras table (with open intervals) | {size['cameras'] / mb:,.0f} MB | |")
    print(f"| whole database | {size['database'] / mb:,.0f} MB | |")
    for name, label in (
        ("at", "search at T"),
        ("at_seen", "search at T, points some camera sees"),
        ("range", "search over 2 h"),
        ("route", f"route of {ROUTE_POINTS} points"),
    ):
        values = timings[name]
        if not values:
            print(f"| {label} | none | |")
            continue
        target = f"< {TARGET_P95_MS:.0f} ms" if name == "at" else ""
        print(
            f"| {label}: median / p95 of {len(values)} | "
            f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f} ms | {target} |"
        )
    found = timings["found"]
    print(
        f"| cameras seeing the point | median {statistics.median(found):g}, max {max(found):g} | |"
    )
    print(f"| load by COPY / index build | {load_s:.0f} s / {index_s:.0f} s | |")
    print()
    print(f"Machine: {harness.machine(memory=True)}; load average {harness.load_average()}.")
    print(f"Target p95 at T < {TARGET_P95_MS:.0f} ms: {harness.verdict(ok)}.")
    return ok


def run(args: argparse.Namespace) -> int:
    now = time.time()
    start = now - args.days * DAY
    with new_database(args.server) as url:
        open_engine(url).dispose()  # the registry's own tables and indexes
        print(f"cameras: {args.cameras:,} by COPY ...", flush=True)
        fill_cameras(url, args.cameras, now, args.seed)
        print(f"intervals: {args.days} days by binary COPY ...", flush=True)
        rows, load_s, index_s = fill_intervals(url, args.cameras, start, now, args)
        size = sizes(url)
        print(f"searching ({args.warmup} untimed first) ...", flush=True)
        timings = measure(url, args, now)
        ok = report(args, rows, load_s, index_s, size, timings)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL admin URL; a new database is made and dropped there",
    )
    parser.add_argument("--cameras", type=int, default=350_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--changes", type=float, default=4.0, help="state changes a day")
    parser.add_argument("--gaps", type=float, default=0.5, help="recording gaps a day")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if min(args.cameras, args.days, args.queries) < 1 or args.warmup < 0:
        parser.error("--cameras, --days and --queries must be positive")
    return harness.run_main(
        "registry_history", lambda: run(args), interrupted="the bench database was dropped"
    )


if __name__ == "__main__":
    sys.exit(main())
