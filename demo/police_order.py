"""The demo's police officer: find the demo camera, prepare a request for the last few
minutes, sign it with the police key (off the server, with `camera-registry police sign`),
submit it, and follow it until the evidence is verified at the registry.

    python demo/police_order.py --registry URL --token API_TOKEN --key police.key \\
        [--agent demo-shop --camera front] --minutes 3 [--kind voluntary --owner-page URL]

An order is approved by the agent's policy; a voluntary request waits for the owner, on
the owner page (`--owner-page` says where) or `camera-agent requests approve`. Prints each
step; exits 0 once the package is verified, 1 if anything fails."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

POLL_S = 1.0
# Gives up after this long without progress; a request waiting for the owner waits on.
TIMEOUT_S = 300.0
FINAL = ("completed", "failed", "rejected", "declined")
AWAITING_OWNER = "awaiting_owner"


def say(line: str) -> None:
    """Print one line in one write: the demo's scripts share one terminal, and print()
    under `python -u` writes the text and its newline apart, so another script's line
    could land between them (seen: "agent: sentnotification: ...")."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Kind:
    """What the officer writes for each kind of request."""

    case: str
    basis: str
    reason: str
    words: str


KINDS = {
    "order": Kind(
        "DEMO-001", "demo order (no real case)", "the demo shows the whole flow", "order"
    ),
    "voluntary": Kind(
        "DEMO-002",
        "voluntary request (no real case)",
        "the demo shows the owner's side",
        "voluntary request",
    ),
}


class Officer:
    def __init__(self, registry: str, token: str) -> None:
        self.registry = registry.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.session.request(method, self.registry + path, json=body, timeout=30)
        if answer.status_code >= 400:
            raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}")
        return answer.json()

    def raw(self, path: str) -> bytes:
        answer = self.session.get(self.registry + path, timeout=30)
        answer.raise_for_status()
        return answer.content


def _wait(what: str, probe: Any, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def _with_footage(officer: Officer, agent: str | None, camera: str | None) -> Any:
    """The first camera with footage at the registry (the one named, if named)."""
    for row in officer.call("GET", "/api/v1/cameras")["cameras"]:
        if agent not in (None, row["agent"]) or camera not in (None, row["camera"]):
            continue
        if row["footage_newest"]:
            return row
    return None


def _follow(officer: Officer, request_id: str, owner_page: str | None) -> dict[str, Any]:
    """Print each new state (and upload progress) of the request until it ends."""
    seen = ""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        row: dict[str, Any] = next(
            r
            for r in officer.call("GET", "/api/v1/requests")["requests"]
            if r["request_id"] == request_id
        )
        progress = row["progress"]
        now = row["state"] + (
            f" {progress['bytes_sent']}/{progress['bytes_total']} bytes"
            if progress and progress["bytes_total"]
            else ""
        )
        if now != seen:
            say(f"agent: {now}" + (f" ({row['reason']})" if row["reason"] else ""))
            if row["state"] == AWAITING_OWNER:
                where = (
                    f"on the owner page {owner_page}/requests"
                    if owner_page
                    else f"with camera-agent requests approve|decline {request_id}"
                )
                say(f"police: {request_id} waits for the owner, who decides {where}")
            seen = now
            deadline = time.monotonic() + TIMEOUT_S
        if row["state"] in FINAL:
            return row
        if row["state"] != AWAITING_OWNER and time.monotonic() > deadline:
            raise SystemExit(f"gave up: no progress of {request_id} in {TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--agent", help="the agent to ask (default: the first with footage)")
    parser.add_argument("--camera", help="its camera (default: the first with footage)")
    parser.add_argument(
        "--wait",
        type=float,
        default=TIMEOUT_S,
        metavar="SECONDS",
        help="how long to wait for a camera with footage",
    )
    parser.add_argument(
        "--wait-only", action="store_true", help="only wait for a camera with footage"
    )
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--kind", choices=sorted(KINDS), default="order")
    parser.add_argument(
        "--owner-page", metavar="URL", help="where the owner decides on a voluntary request"
    )
    args = parser.parse_args()
    officer = Officer(args.registry, args.token)
    kind = KINDS[args.kind]

    camera = _wait(
        "a camera's footage at the registry",
        lambda: _with_footage(officer, args.agent, args.camera),
        args.wait,
    )
    if args.wait_only:
        say(f"police: {camera['agent']}/{camera['camera']} is at the registry with footage")
        return 0
    end = datetime.now(UTC)
    start = end - timedelta(minutes=args.minutes)
    say(
        f"police: {camera['agent']}/{camera['camera']} holds footage from "
        f"{camera['footage_oldest']}; "
        f"asking ({kind.words}, case {kind.case}) for {start:%H:%M:%S}-{end:%H:%M:%S} UTC"
    )
    prepared = officer.call(
        "POST",
        "/api/v1/requests",
        {
            "agent": camera["agent"],
            "cameras": [camera["camera"]],
            "kind": args.kind,
            "case": kind.case,
            "basis": kind.basis,
            "requester": "Demo officer",
            "reason": kind.reason,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    request_id = prepared["request_id"]
    with tempfile.TemporaryDirectory() as folder:
        claims = Path(folder) / "claims.json"
        claims.write_bytes(officer.raw(f"/api/v1/requests/{request_id}/claims.json"))
        signed = subprocess.run(
            [
                sys.executable,
                "-m",
                "registry",
                "police",
                "sign",
                str(claims),
                "--key",
                str(args.key),
                "--yes",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if signed.returncode != 0:
        raise SystemExit(f"signing failed: {signed.stderr}")
    say(f"police: signed {request_id} with the police key; the registry relays it")
    officer.call("POST", f"/api/v1/requests/{request_id}/token", {"token": signed.stdout.strip()})

    outcome = _follow(officer, request_id, args.owner_page)
    if outcome["state"] != "completed":
        return 1
    package = _wait(
        "the package check",
        lambda: next(
            (
                p
                for p in officer.call("GET", "/api/v1/evidence")["packages"]
                if p["request_id"] == request_id and p["checked"]
            ),
            None,
        ),
    )
    verdict = "VERIFIED" if package["verified"] else "NOT VERIFIED"
    say(f"registry: evidence {verdict} ({kind.words} {kind.case}): {package['verdict']}")
    return 0 if package["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
