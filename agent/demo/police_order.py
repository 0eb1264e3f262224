"""The demo's police officer: find the demo camera, prepare an order for the last few
minutes, sign it with the police key (off the server, with `camera-registry police sign`),
submit it, and follow it until the evidence is verified at the registry.

    python agent/demo/police_order.py --registry URL --token API_TOKEN --key police.key \\
        --agent demo-shop --camera front --minutes 3

Prints each step; exits 0 once the package is verified, 1 if anything fails."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

POLL_S = 1.0
TIMEOUT_S = 300.0
FINAL = ("completed", "failed", "rejected", "declined")


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


def _wait(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    raise SystemExit(f"gave up waiting for {what} after {TIMEOUT_S:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    officer = Officer(args.registry, args.token)

    camera = _wait(
        "the camera's footage at the registry",
        lambda: next(
            (
                c
                for c in officer.call("GET", "/api/v1/cameras")["cameras"]
                if c["agent"] == args.agent and c["camera"] == args.camera and c["footage_newest"]
            ),
            None,
        ),
    )
    end = datetime.now(UTC)
    start = end - timedelta(minutes=args.minutes)
    print(
        f"police: {args.agent}/{args.camera} holds footage from {camera['footage_oldest']}; "
        f"asking for {start:%H:%M:%S}-{end:%H:%M:%S} UTC"
    )
    prepared = officer.call(
        "POST",
        "/api/v1/requests",
        {
            "agent": args.agent,
            "cameras": [args.camera],
            "kind": "order",
            "case": "DEMO-001",
            "basis": "demo order (no real case)",
            "requester": "Demo officer",
            "reason": "the demo shows the whole flow",
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
    print(f"police: signed {request_id} with the police key; the registry relays it")
    officer.call("POST", f"/api/v1/requests/{request_id}/token", {"token": signed.stdout.strip()})

    seen = ""

    def finished() -> dict[str, Any] | None:
        nonlocal seen
        row = next(
            r
            for r in officer.call("GET", "/api/v1/requests")["requests"]
            if r["request_id"] == request_id
        )
        progress = row["progress"]
        now = row["state"] + (
            f" {progress['bytes_sent']}/{progress['bytes_total']} bytes" if progress else ""
        )
        if now != seen:
            print(f"agent: {now}" + (f" ({row['reason']})" if row["reason"] else ""))
            seen = now
        return row if row["state"] in FINAL else None

    outcome = _wait("the request to finish", finished)
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
    print(f"registry: evidence {verdict}: {package['verdict']}")
    return 0 if package["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
