"""An evidence upload through a 60 s network drop: does it resume by itself, how soon after
the network returns, how much is sent twice, and does the package still verify.

The agent's real Delivery and Uploader (agent/evidence/delivery.py, upload.py) with their
default retry settings and a bandwidth cap send a signed package of two recorded segments
(about 50 MB, made by the agent's exporter) to the registry's tus intake
(registry/evidence/intake.py, on SQLite, under /files on a real uvicorn), through a TCP
relay (tests/support/cutting_proxy.py). Once --cut-after MB have reached the server the
relay cuts the network for --outage s, in one of two ways:

- reset: open connections are reset, new ones are refused with a reset (a router that
  answers while the uplink behind it is down);
- blackhole: open connections go silent and new ones are accepted and swallowed (packets
  vanish; only timeouts notice). At the restore the silenced connections are reset, as a
  NAT that lost their mapping would.

Measured at the server, by an ASGI wrapper around the intake: every PATCH body byte that
arrived (so re-sent bytes = arrived - package size), when the first byte arrived after the
restore and when the intake first moved an offset forward after it. The uploader's own
retries are read from its log. At the end the intake's check of the package (manifest
signature against the enrolled key, every SHA-256) must say verified.

    PYTHONPATH=. .venv/bin/python bench/upload_outage.py [--modes reset,blackhole]
        [--outage 60] [--size-mb 50] [--rate-mb 5] [--cut-after 12]

Takes the outage plus about 30 s per mode (about 3 minutes with the defaults). Target: the
package completes and verifies with no outside help in every mode. Exits 1 when it does
not, 2 when the setup fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.audit import AuditLog
from agent.evidence.export import Package
from agent.evidence.upload import Uploader, UploadError, UploadResult
from agent.police_requests.delivery import Delivery
from agent.police_requests.store import RequestStore
from bench import harness
from registry.db.engine import open_engine
from registry.errors import RegistryError
from registry.evidence.intake import EvidenceIntake, PackageRecord, package
from tests.registry.evidence.test_evidence_verify import export_package
from tests.support.asgi_server import serve_asgi
from tests.support.cutting_proxy import CuttingProxy, Mode
from tests.support.delivery import uploading_request
from tests.support.registry_rows import add_enrolled_agent, add_prepared_request

MB = 1_000_000
REQUEST_ID = "req-outage"
CASE = "2026-BENCH-0001"
UPLOAD_TOKEN = "bench-upload-token-" + "x" * 32
MODES: tuple[Mode, ...] = ("reset", "blackhole")
# After the network returns the upload must finish within this, or it did not resume.
RESUME_TIMEOUT_S = 300.0
CHECK_TIMEOUT_S = 60.0


# --- the server side: what arrived, and when ---------------------------------------------------


@dataclass
class Arrivals:
    """PATCH body bytes as the intake received them, and its offset answers, timestamped."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pieces: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, bytes)
    # (monotonic, offset) each time the intake moved an upload's offset forward
    accepted: list[tuple[float, int]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # upload path -> its offset

    @property
    def total(self) -> int:
        with self.lock:
            return sum(n for _, n in self.pieces)

    def first_byte_after(self, moment: float) -> float | None:
        with self.lock:
            return next((t for t, _ in self.pieces if t >= moment), None)

    def first_accept_after(self, moment: float) -> float | None:
        with self.lock:
            return next((t for t, _ in self.accepted if t >= moment), None)


class CountingApp:
    """Wraps the tus intake: counts the body of every PATCH and notes its answers."""

    def __init__(self, app: ASGIApp, arrivals: Arrivals) -> None:
        self._app = app
        self._arrivals = arrivals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PATCH":
            await self._app(scope, receive, send)
            return
        arrivals = self._arrivals

        async def counted_receive() -> Message:
            message = await receive()
            body = message.get("body", b"") if message["type"] == "http.request" else b""
            if body:
                with arrivals.lock:
                    arrivals.pieces.append((time.monotonic(), len(body)))
            return message

        async def noted_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 204:
                headers = dict(cast(list[tuple[bytes, bytes]], message.get("headers", [])))
                offset = headers.get(b"upload-offset", b"")
                if offset.isdigit():
                    with arrivals.lock:
                        # A PATCH cut off answers with the offset unchanged: not progress.
                        if int(offset) > arrivals.offsets.get(scope["path"], 0):
                            arrivals.offsets[scope["path"]] = int(offset)
                            arrivals.accepted.append((time.monotonic(), int(offset)))
            await send(message)

        await self._app(scope, counted_receive, noted_send)


def prepare_registry(engine: Engine, device: Ed25519PrivateKey) -> None:
    """The agent enrolled with its device key, and a request whose upload token we hold."""
    add_enrolled_agent(engine, device.public_key())
    add_prepared_request(
        engine,
        REQUEST_ID,
        UPLOAD_TOKEN,
        CASE,
        requester="bench",
        reason="upload outage bench",
        prepared_by="bench",
    )


# --- the agent side: its retries, from its log ---------------------------------------------------


class RetryLog(logging.Handler):
    """The uploader's warnings ("... failed: X; retrying in Ns"), timestamped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.monotonic(), record.getMessage()))


@contextmanager
def watching_uploader() -> Iterator[RetryLog]:
    handler = RetryLog()
    logger = logging.getLogger("agent.evidence.upload")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False  # into the table, not onto the terminal
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = True


class CountingUploader(Uploader):
    """The agent's Uploader, adding up the PATCH bytes it sent (re-sent ones included)."""

    sent = 0

    def upload(self, path: Path, **options: Any) -> UploadResult:
        result = super().upload(path, **options)
        self.sent += result.bytes_sent
        return result


# --- one run --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mode: Mode
    package_bytes: int
    cut_at_bytes: int = 0
    attempts_during_outage: int = 0  # connections the relay refused or swallowed
    retries_logged: int = 0
    longest_retry_delay_s: float = 0.0
    resumed: bool = False
    error: str | None = None
    to_first_byte_s: float | None = None  # network back -> first body byte at the server
    to_first_accept_s: float | None = None  # network back -> the intake moved the offset on
    to_done_s: float | None = None  # network back -> the whole package delivered
    arrived_bytes: int = 0
    client_sent_bytes: int = 0
    verdict: str = ""
    verified: bool = False
    retries: list[str] = field(default_factory=list)

    @property
    def resent_bytes(self) -> int:
        return self.arrived_bytes - self.package_bytes

    @property
    def client_resent_bytes(self) -> int:
        return self.client_sent_bytes - self.package_bytes


def wait_package_checked(engine: Engine) -> PackageRecord | None:
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while time.monotonic() < deadline:
        record = package(engine, REQUEST_ID)
        if record is not None and record.checked:
            return record
        time.sleep(0.2)
    return package(engine, REQUEST_ID)


def run_mode(mode: Mode, args: argparse.Namespace, folder: Path) -> Outcome:
    device = Ed25519PrivateKey.generate()
    each = int(args.size_mb * MB / 2)
    print(f"[{mode}] exporting a {args.size_mb:.0f} MB package ...", flush=True)
    pkg: Package = export_package(
        folder / "agent", device, request_id=REQUEST_ID, case=CASE, sizes=(each, each)
    )
    assert pkg.signed is not None
    total = sum(f.bytes for f in pkg.files) + pkg.signed.stat().st_size
    outcome = Outcome(mode, total)
    try:
        engine = open_engine(f"sqlite:///{folder / 'registry.sqlite'}")
    except RegistryError as exc:
        raise harness.SetupError(str(exc)) from exc
    try:
        prepare_registry(engine, device)
        intake = EvidenceIntake(engine, folder / "evidence", 20 * 1000**3)
        arrivals = Arrivals()
        app = CountingApp(Starlette(routes=[Mount("/files", routes=intake.routes())]), arrivals)
        with (
            serve_asgi(app) as base,
            CuttingProxy(int(base.rsplit(":", 1)[1])) as proxy,
            watching_uploader() as retry_log,
        ):
            run_through(mode, args, folder, pkg, proxy, arrivals, retry_log, outcome)
        record = wait_package_checked(engine)
        outcome.arrived_bytes = arrivals.total
        if record is not None:
            outcome.verdict = record.verdict
            outcome.verified = record.verified
    finally:
        engine.dispose()
    return outcome


def run_through(
    mode: Mode,
    args: argparse.Namespace,
    folder: Path,
    pkg: Package,
    proxy: CuttingProxy,
    arrivals: Arrivals,
    retry_log: RetryLog,
    outcome: Outcome,
) -> None:
    store = RequestStore(folder / "agent-requests.sqlite")
    audit = AuditLog(folder / "agent-audit.log")
    uploader = CountingUploader(rate_limit_bytes_per_s=int(args.rate_mb * MB))
    delivery = Delivery(store, audit, uploader)
    stop = threading.Event()
    finished = threading.Event()
    failure: list[BaseException] = []
    now = datetime.now(UTC)
    request = uploading_request(
        REQUEST_ID,
        f"{proxy.origin}/files/",
        UPLOAD_TOKEN,
        case=CASE,
        requester="bench",
        window=(now - timedelta(hours=1), now - timedelta(minutes=30)),
    )

    def deliver() -> None:
        try:
            delivery.send(request, pkg, lambda _done, _total: None, stop)
        except BaseException as exc:  # reported in the table, the bench goes on
            failure.append(exc)
        finally:
            finished.set()

    sender = threading.Thread(target=deliver, name=f"delivery:{mode}", daemon=True)
    started = time.monotonic()
    sender.start()
    try:
        cut_after = int(args.cut_after * MB)
        while arrivals.total < cut_after:
            if finished.is_set():
                raise harness.SetupError(f"the upload ended before the cut: {failure}")
            if time.monotonic() - started > 120:
                raise harness.SetupError("the upload did not reach the cut point in 120 s")
            time.sleep(0.01)
        proxy.cut(mode)
        cut = time.monotonic()
        outcome.cut_at_bytes = arrivals.total
        print(
            f"[{mode}] network cut at {outcome.cut_at_bytes / MB:.1f} MB; "
            f"down for {args.outage:.0f} s ...",
            flush=True,
        )
        while time.monotonic() < cut + args.outage:
            time.sleep(0.05)
        refused_before = proxy.refused
        proxy.restore()
        back = time.monotonic()
        outcome.attempts_during_outage = refused_before
        during = [(t, line) for t, line in retry_log.lines if cut <= t < back]
        outcome.retries_logged = len(during)
        print(f"[{mode}] network back; {len(during)} retries logged during the outage", flush=True)
        finished.wait(RESUME_TIMEOUT_S)
        done = time.monotonic()
        outcome.resumed = finished.is_set() and not failure
        if failure:
            exc = failure[0]
            reason = exc.reason if isinstance(exc, UploadError) else type(exc).__name__
            outcome.error = f"{reason}: {exc}"
        elif not finished.is_set():
            outcome.error = f"not finished {RESUME_TIMEOUT_S:.0f} s after the network returned"
        if outcome.resumed:
            outcome.to_done_s = done - back
        first_byte = arrivals.first_byte_after(back)
        first_accept = arrivals.first_accept_after(back)
        outcome.to_first_byte_s = None if first_byte is None else first_byte - back
        outcome.to_first_accept_s = None if first_accept is None else first_accept - back
        outcome.retries = [f"{t - cut:6.1f} s  {line}" for t, line in retry_log.lines if t >= cut]
        delays = [
            float(line.rsplit("retrying in ", 1)[1].rstrip("s"))
            for _, line in retry_log.lines
            if "retrying in " in line
        ]
        outcome.longest_retry_delay_s = max(delays, default=0.0)
    finally:
        stop.set()
        sender.join(30)
        store.close()
        outcome.client_sent_bytes = uploader.sent


# --- the report ---------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    print()
    print(
        f"{args.size_mb:.0f} MB package (2 segments + manifest), agent Uploader defaults "
        f"(backoff 1-30 s, timeouts 10/60 s), cap {args.rate_mb:.0f} MB/s, "
        f"network down {args.outage:.0f} s"
    )
    for outcome in outcomes:
        print(f"\n--- {outcome.mode}: the uploader's log from the cut on ---")
        for line in outcome.retries:
            print(line)
    header = ["", *[o.mode for o in outcomes]]
    rows: list[list[str]] = [
        ["cut after (server had)", *[f"{o.cut_at_bytes / MB:.1f} MB" for o in outcomes]],
        ["tries during the outage (relay)", *[str(o.attempts_during_outage) for o in outcomes]],
        ["retries logged during the outage", *[str(o.retries_logged) for o in outcomes]],
        ["longest retry delay", *[f"{o.longest_retry_delay_s:.1f} s" for o in outcomes]],
        ["resumed by itself", *["yes" if o.resumed else f"NO ({o.error})" for o in outcomes]],
        ["network back -> first byte at server", *[seconds(o.to_first_byte_s) for o in outcomes]],
        ["network back -> first chunk accepted", *[seconds(o.to_first_accept_s) for o in outcomes]],
        ["network back -> package delivered", *[seconds(o.to_done_s) for o in outcomes]],
        [
            "bytes re-sent (server-side)",
            *[f"{o.resent_bytes:,} ({o.resent_bytes / MB:.2f} MB)" for o in outcomes],
        ],
        [
            "bytes sent twice (the agent's count)",
            *[f"{o.client_resent_bytes:,} ({o.client_resent_bytes / MB:.2f} MB)" for o in outcomes],
        ],
        [
            "package verified at the registry",
            *["yes" if o.verified else f"NO ({o.verdict or 'not checked'})" for o in outcomes],
        ],
    ]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    ok = all(o.resumed and o.verified for o in outcomes)
    print(f"\nMachine: {harness.machine()}; load average {harness.load_average()}.")
    print(f"Target (resumes by itself, package verifies): {harness.verdict(ok)}.")
    return ok


def run(args: argparse.Namespace) -> int:
    outcomes = []
    for mode in args.modes:
        with tempfile.TemporaryDirectory(prefix=f"upload-outage-{mode}-") as folder:
            outcomes.append(run_mode(mode, args, Path(folder)))
    return 0 if report(outcomes, args) else 1


def parse_modes(value: str) -> list[Mode]:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise argparse.ArgumentTypeError(f"{mode!r}: modes are {', '.join(MODES)}")
    return cast(list[Mode], modes)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--modes",
        type=parse_modes,
        default=list(MODES),
        help="comma-separated: reset,blackhole (default both)",
    )
    parser.add_argument("--outage", type=float, default=60.0, help="seconds, default 60")
    parser.add_argument("--size-mb", type=float, default=50.0, help="package size, default 50")
    parser.add_argument("--rate-mb", type=float, default=5.0, help="upload cap in MB/s, default 5")
    parser.add_argument(
        "--cut-after", type=float, default=12.0, help="MB at the server before the cut, default 12"
    )
    args = parser.parse_args()
    if args.outage < 0 or args.size_mb <= 0 or args.rate_mb <= 0:
        parser.error("--outage must not be negative, --size-mb and --rate-mb positive")
    if not 0 < args.cut_after < args.size_mb:
        parser.error("--cut-after must be within the package")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return harness.run_main(
        "upload_outage", lambda: run(args), interrupted="the temporary files were removed"
    )


if __name__ == "__main__":
    sys.exit(main())
