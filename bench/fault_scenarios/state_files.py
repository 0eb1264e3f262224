"""Broken and missing state files: each garbled or deleted in turn under a recording agent,
then kill -9 at random moments while it writes (issue 15.2).

A seed run records a looping file camera for a while and accepts a voluntary request (so
a window is held). Each case copies that state, breaks one file, starts the agent once
and reports whether health flowed, how long after the start, and what was kept: the
segments the index knows again, the held window, the broken file kept aside.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.fault_scenarios import Outcome
from bench.harness import SetupError
from contract.timestamps import rfc3339
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.media import write_h264
from tests.support.mqtt_watch import Watcher
from tests.support.tokens import Police

NAME = "state_files"
WHAT = (
    "garble, then delete, the footage index, outbox, request store and device key in turn; "
    "then kill -9 the agent at random moments while it records"
)

BASE = "camreg/v1/agents/shop-42"
HEALTH = f"{BASE}/cameras/front/health"
HELD = "held-1"
# Health must flow within this long of a start, whatever broke (a start costs ~3 s here).
HEALTH_WITHIN_S = 30.0


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]  # given the state directory


def garble(path: Path) -> None:
    """The first 4 KiB overwritten with junk (WAL companions gone): a power cut's work."""
    with open(path, "r+b") as fh:
        fh.write(bytes(range(256)) * 16)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def delete(path: Path) -> None:
    path.unlink()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


CASES = [
    Case("footage index garbled", lambda s: garble(s / "footage.sqlite")),
    Case("footage index deleted", lambda s: delete(s / "footage.sqlite")),
    Case("outbox garbled", lambda s: garble(s / "outbox.sqlite")),
    Case("outbox deleted", lambda s: delete(s / "outbox.sqlite")),
    Case("request store garbled", lambda s: garble(s / "requests.sqlite")),
    Case("request store deleted", lambda s: delete(s / "requests.sqlite")),
    Case("device key garbled", lambda s: (s / "keys" / "device.key").write_bytes(b"junk\n")),
    Case("device key deleted", lambda s: delete(s / "keys" / "device.key")),
]


def config(root: Path, broker: Broker, police: Police) -> Path:
    return write_config(
        root / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": str(root.parent / "clip.mp4"),
                "analysis_interval": "2s",
                "recording": {"segment": "1s"},
            }
        ],
        registry={"health_interval": "1s"},
        police={"keys": [{"jwk": police.jwk}], "upload_allow": [police.upload]},
    )


def segments(state: Path) -> tuple[int, int, list[str]]:
    """(watchable segments, of them rebuilt, hold reasons) in the index."""
    path = state / "footage.sqlite"
    if not path.exists():
        return 0, 0, []
    with closing(sqlite3.connect(path, timeout=5)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(segments)")}
        rebuilt = "rebuilt" if "rebuilt" in columns else "0"
        count, marked = db.execute(
            f"SELECT count(*), COALESCE(sum({rebuilt}), 0) FROM segments"
            " WHERE state IN ('closed', 'partial')"
        ).fetchone()
        holds = [row[0] for row in db.execute("SELECT reason FROM holds")]
    return int(count), int(marked), holds


def seed(root: Path, broker: Broker, police: Police, seconds: float) -> int:
    """Record `seconds` and accept a held request; returns the segments recorded."""
    agent = AgentProcess(config(root, broker, police))
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent.start()
        try:
            began = time.monotonic()
            deadline = began + 60 + seconds
            while time.monotonic() - began < seconds or segments(root / "state")[0] < 2:
                if time.monotonic() > deadline or (agent.proc and agent.proc.poll() is not None):
                    raise SetupError(f"the seed run recorded nothing:\n{agent.log[-3000:]}")
                time.sleep(0.2)
            now = datetime.now(UTC)
            window = {"start": rfc3339(now - timedelta(seconds=seconds)), "end": rfc3339(now)}
            token = police.token(police.claims(jti=HELD, kind="voluntary", window=window))
            watch.publish(f"{BASE}/requests", token)
            watch.wait_for(
                lambda m: (
                    m.topic == f"{BASE}/requests/{HELD}/status"
                    and m.json()["state"] == "awaiting_owner"
                ),
                timeout=30,
            )
            agent.terminate()
        finally:
            agent.close()
    return segments(root / "state")[0]


def first_health(watch: Watcher, after: float, timeout: float) -> float | None:
    """Seconds from `after` to the first health report, or None."""
    try:
        message = watch.wait_for(lambda m: m.topic == HEALTH, timeout=timeout, after=after)
    except AssertionError:
        return None
    return message.at - after


def run_case(case: Case, seed_root: Path, work: Path, police: Police, recorded: int) -> str:
    """One start after the damage; returns the report line, prefixed 'ok' or 'FAIL'."""
    root = work / case.name.replace(" ", "-")
    root.mkdir()
    shutil.copytree(seed_root / "state", root / "state")
    shutil.copytree(seed_root / "footage", root / "footage")
    case.damage(root / "state")
    broker = Broker(directory=root / "broker")
    broker.start()
    agent = AgentProcess(config(root, broker, police))
    try:
        with Watcher.for_broker(broker, "camreg/#") as watch:
            began = time.monotonic()
            agent.start()
            took = first_health(watch, began, HEALTH_WITHIN_S)
            births = [
                m.json() for m in watch.messages(f"{BASE}/state") if m.json()["state"] == "online"
            ]
            rebuilt_after = None
            if "footage index" in case.name and took is not None:
                deadline = time.monotonic() + 60 + recorded  # hashing every segment again
                while "footage index rebuilt" not in agent.log and time.monotonic() < deadline:
                    time.sleep(0.1)
                if "footage index rebuilt" in agent.log:
                    rebuilt_after = time.monotonic() - began
            agent.terminate()
    finally:
        agent.close()
        broker.close()
    count, rebuilt, holds = segments(root / "state")
    kept = sorted(p.name for p in (root / "state").glob("*.corrupt-*") if "-wal" not in p.name)
    key_state = next((b["device_key"]["state"] for b in births if "device_key" in b), "usable")
    ok = took is not None and "Traceback" not in agent.log
    if "footage index" in case.name:
        ok = ok and count >= recorded and holds == [f"request {HELD}"]
    if case.name == "device key deleted":  # and not silently made anew
        ok = ok and key_state == "missing" and not (root / "state/keys/device.key").exists()
    elif case.name == "device key garbled":
        ok = ok and key_state == "unusable"
    health = f"health after {took:.1f} s" if took is not None else "NO HEALTH"
    if rebuilt_after is not None:
        health += f", index rebuilt after {rebuilt_after:.1f} s"
    return (
        f"{'ok' if ok else 'FAIL'} {case.name}: {health}; index {count} segment(s) of "
        f"{recorded} ({rebuilt} rebuilt), holds {len(holds)}; kept aside: "
        f"{', '.join(kept) or 'nothing'}; device key {key_state}"
    )


def kill_loop(seed_root: Path, work: Path, police: Police, kills: int) -> tuple[bool, str]:
    """kill -9 at random moments while recording, restarting each time."""
    root = work / "kill-9"
    root.mkdir()
    shutil.copytree(seed_root / "state", root / "state")
    shutil.copytree(seed_root / "footage", root / "footage")
    broker = Broker(directory=root / "broker")
    broker.start()
    cfg = config(root, broker, police)
    rng = random.Random(15)
    waits: list[float] = []
    try:
        with Watcher.for_broker(broker, "camreg/#") as watch:
            for _ in range(kills):
                agent = AgentProcess(cfg)
                began = time.monotonic()
                agent.start()
                took = first_health(watch, began, HEALTH_WITHIN_S)
                if took is None:
                    agent.close()
                    return False, f"no health after restart {len(waits) + 1}:\n{agent.log[-2000:]}"
                waits.append(took)
                time.sleep(rng.uniform(0.2, 3.0))
                assert agent.proc is not None
                agent.proc.send_signal(signal.SIGKILL)
                agent.proc.wait(10)
    finally:
        broker.close()
    sound = []
    for name in ("footage.sqlite", "outbox.sqlite", "requests.sqlite"):
        with sqlite3.connect(root / "state" / name) as db:
            sound.append(db.execute("PRAGMA quick_check").fetchone()[0] == "ok")
    kept = list((root / "state").glob("*.corrupt-*"))
    ok = all(sound) and not kept
    return ok, (
        f"{'ok' if ok else 'FAIL'} kill -9 x{kills}: health after every restart (longest "
        f"{max(waits):.1f} s, mean {sum(waits) / len(waits):.1f} s); SQLite files sound: "
        f"{all(sound)}; files kept aside: {len(kept)}"
    )


def run(work: Path, *, short: bool) -> Outcome:
    seed_root = work / "seed"
    seed_root.mkdir()
    write_h264(work / "clip.mp4", 3, width=320, height=180, fps=10)
    police = Police()
    broker = Broker(directory=seed_root / "broker")
    broker.start()
    try:
        recorded = seed(seed_root, broker, police, 4.0 if short else 60.0)
    finally:
        broker.close()
    facts = [f"seed: {recorded} segments recorded, request {HELD} held"]
    cases = CASES[::2] if short else CASES  # short: the garbled ones
    lines = [run_case(case, seed_root, work, police, recorded) for case in cases]
    ok, line = kill_loop(seed_root, work, police, 2 if short else 12)
    facts += [*lines, line]
    return Outcome(survived=ok and all(x.startswith("ok") for x in lines), facts=facts)
