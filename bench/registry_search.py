"""Police search latency on a national registry: 340,000 cameras over the Netherlands.

Fills the registry's `cameras` table (registry/db/schema.py) through the registry's own
engine (registry.db.engine.open_engine) and then times registry.police.search.find_cameras,
the function the web API calls, end to end: connection from the pool, the bounding-box
query on the (lat, lon) index, the exact view-cone geometry in Python, sorting.

- Cameras: --cameras (default 340,000, the Dutch "Camera in Beeld" registry's order of
  magnitude). 65 % around the 23 largest Dutch towns (normal spread growing with the
  town's size), 35 % uniform over the box lat 50.75-53.55, lon 3.35-7.22. Bearing uniform;
  field of view 60-120 degrees; range log-normal around 25 m (5-150 m); 8 % without a
  direction, 5 % without a range; footage reaching back 1-30 days up to now; 4 % without
  footage information; status mostly ok.
- Queries: --queries random points (default 200) around the same towns (where searches
  happen), each at a random moment of the last 3 days, after --warmup untimed ones.
  Latency: median and p95 wall-clock per call. Target: p95 < 50 ms.

    PYTHONPATH=. python3 bench/registry_search.py [--database URL] [--cameras 340000]
        [--queries 200] [--seed 1]

By default the database is SQLite in a new temporary folder, removed at the end. With
--database postgresql://... the `cameras` table there must be empty; the rows are deleted
again at the end. Exits 1 when the target is missed, 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select

from bench import harness
from registry.db.engine import open_engine
from registry.db.schema import cameras
from registry.errors import RegistryError
from registry.police.search import DEFAULT_RADIUS_M, destination, find_cameras

DEFAULT_CAMERAS = 340_000
DEFAULT_QUERIES = 200
DEFAULT_WARMUP = 20
TARGET_P95_MS = 50.0
BOX = ((50.75, 53.55), (3.35, 7.22))  # lat, lon
# Large towns: (lat, lon, population in thousands). Cameras and searches cluster here.
TOWNS = [
    (52.3676, 4.9041, 900),
    (51.9244, 4.4777, 650),
    (52.0705, 4.3007, 550),
    (52.0907, 5.1214, 360),
    (51.4416, 5.4697, 235),
    (53.2194, 6.5665, 235),
    (51.5555, 5.0913, 220),
    (52.3508, 5.2647, 215),
    (51.5719, 4.7683, 185),
    (51.8126, 5.8372, 180),
    (52.2112, 5.9699, 165),
    (51.9851, 5.8987, 165),
    (52.3874, 4.6462, 160),
    (52.2215, 6.8937, 160),
    (52.1561, 5.3878, 160),
    (52.4420, 4.8292, 155),
    (51.6978, 5.3037, 155),
    (52.5168, 6.0830, 130),
    (52.1601, 4.4970, 125),
    (50.8514, 5.6910, 120),
    (51.8133, 4.6901, 120),
    (53.2012, 5.7999, 125),
    (52.9925, 6.5649, 68),
]
IN_TOWNS = 0.65
# A town of 100,000 spreads its cameras with this standard deviation; bigger ones wider.
TOWN_SPREAD_M = 1500.0
STATUS_WEIGHTS = {"ok": 0.85, "degraded": 0.08, "failed": 0.03, "offline": 0.04}
CAMERAS_PER_AGENT = 3
BATCH = 10_000


def town_point(rng: random.Random) -> tuple[float, float]:
    lat, lon, thousands = rng.choices(TOWNS, weights=[t[2] for t in TOWNS])[0]
    spread = TOWN_SPREAD_M * math.sqrt(thousands / 100)
    return destination(lat, lon, rng.uniform(0, 360), abs(rng.gauss(0, spread)))


def any_point(rng: random.Random) -> tuple[float, float]:
    if rng.random() < IN_TOWNS:
        return town_point(rng)
    return rng.uniform(*BOX[0]), rng.uniform(*BOX[1])


def camera_rows(count: int, now: float, rng: random.Random) -> Iterator[list[dict[str, Any]]]:
    """The cameras in batches, every row naming every column (one executemany each)."""
    batch: list[dict[str, Any]] = []
    statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    for index in range(count):
        lat, lon = any_point(rng)
        directed = rng.random() >= 0.08
        fov = rng.choice((60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0))
        reach = min(150.0, max(5.0, rng.lognormvariate(math.log(25.0), 0.5)))
        known_range = rng.random() >= 0.05
        newest = now - rng.uniform(0, 120)
        footage = rng.random() >= 0.04
        batch.append(
            {
                "agent_id": f"bench-{index // CAMERAS_PER_AGENT:06d}",
                "camera_id": f"cam-{index % CAMERAS_PER_AGENT}",
                "name": f"Camera {index}",
                "lat": lat,
                "lon": lon,
                "bearing_deg": rng.uniform(0, 360) if directed else None,
                "fov_deg": fov if directed else None,
                "range_m": reach if known_range else None,
                "dori_json": json.dumps(
                    {
                        "detect": round(reach * 2.4, 1),
                        "observe": round(reach, 1),
                        "recognise": round(reach / 2, 1),
                        "identify": round(reach / 4, 1),
                    }
                ),
                "status": rng.choices(statuses, weights)[0],
                "footage_oldest": newest - rng.uniform(1, 30) * 86400 if footage else None,
                "footage_newest": newest if footage else None,
                "received": 0,
                "missing": 0,
            }
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def check_empty(engine: Engine) -> None:
    with engine.connect() as connection:
        existing = connection.execute(select(func.count()).select_from(cameras)).scalar_one()
    if existing:
        raise harness.SetupError(
            f"the cameras table holds {existing:,} rows already; give an empty database"
        )


def fill(engine: Engine, count: int, now: float, rng: random.Random) -> float:
    """Insert the cameras; returns the seconds it took."""
    began = time.perf_counter()
    done = 0
    for batch in camera_rows(count, now, rng):
        with engine.begin() as connection:
            connection.execute(cameras.insert(), batch)
        done += len(batch)
        print(f"\r  {done:,} cameras", end="", flush=True)
    print()
    with engine.begin() as connection:
        # Fresh statistics, as a database that has been running a while has them.
        connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - began


def measure(
    engine: Engine, queries: int, warmup: int, now: float, rng: random.Random
) -> tuple[list[float], list[int]]:
    """Latency (ms) and number of matches of each timed search."""
    latencies: list[float] = []
    matches: list[int] = []
    for index in range(warmup + queries):
        lat, lon = town_point(rng)
        moment = now - rng.uniform(0, 3 * 86400)
        began = time.perf_counter()
        found = find_cameras(engine, lat, lon, moment, radius_m=DEFAULT_RADIUS_M)
        elapsed = (time.perf_counter() - began) * 1000
        if index >= warmup:
            latencies.append(elapsed)
            matches.append(len(found))
    return latencies, matches


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def report(
    backend: str, count: int, fill_s: float, latencies: list[float], matches: list[int]
) -> bool:
    median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    ok = p95 < TARGET_P95_MS
    print()
    print(f"| police search, {count:,} cameras, {backend} | measured | target |")
    print("|---|---|---|")
    print(f"| latency, median of {len(latencies)} searches | {median:.2f} ms | |")
    print(f"| latency, p95 | {p95:.2f} ms | < {TARGET_P95_MS:.0f} ms |")
    print(f"| latency, slowest | {max(latencies):.2f} ms | |")
    print(
        f"| cameras found per search | median {statistics.median(matches):g}, "
        f"max {max(matches)}, none in {sum(1 for m in matches if m == 0)} | |"
    )
    print(f"| filling the table | {fill_s:.1f} s | |")
    print()
    print(f"Machine: {harness.machine()}; load average {harness.load_average()}.")
    print(f"Target p95 < {TARGET_P95_MS:.0f} ms: {harness.verdict(ok)}.")
    return ok


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="registry-search-") as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'registry.sqlite'}"
        try:
            engine = open_engine(url)
        except RegistryError as exc:
            raise harness.SetupError(str(exc)) from exc
        backend = engine.dialect.name
        try:
            check_empty(engine)
        except BaseException:
            engine.dispose()
            raise
        try:
            print(f"filling {backend} with {args.cameras:,} cameras ...", flush=True)
            fill_s = fill(engine, args.cameras, now, rng)
            print(f"searching {args.queries} points ({args.warmup} untimed first) ...", flush=True)
            latencies, matches = measure(engine, args.queries, args.warmup, now, rng)
            ok = report(backend, args.cameras, fill_s, latencies, matches)
        finally:
            if args.database:
                # Leave the given database as it was found: no bench cameras in it.
                with engine.begin() as connection:
                    connection.execute(delete(cameras).where(cameras.c.agent_id.like("bench-%")))
            engine.dispose()
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        metavar="URL",
        help="postgresql://USER@HOST/DB with an empty cameras table "
        "(default: SQLite in a temporary folder)",
    )
    parser.add_argument(
        "--cameras", type=int, default=DEFAULT_CAMERAS, help=f"default {DEFAULT_CAMERAS:,}"
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=DEFAULT_QUERIES,
        help=f"timed searches, default {DEFAULT_QUERIES}",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"untimed searches first, default {DEFAULT_WARMUP}",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed, default 1")
    args = parser.parse_args()
    if args.cameras < 1 or args.queries < 1 or args.warmup < 0:
        parser.error("--cameras and --queries must be positive, --warmup not negative")
    return harness.run_main(
        "registry_search", lambda: run(args), interrupted="the bench cameras were removed"
    )


if __name__ == "__main__":
    sys.exit(main())
