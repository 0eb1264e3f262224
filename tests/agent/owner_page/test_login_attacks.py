"""Attacks on the owner page's login through real HTTP: parallel password guessing from one
address, and a web page that re-points its own name at the device (DNS rebinding)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from agent.owner_page import auth
from contract.common.login_limit import Attempt, AttemptLimiter, Refused
from tests.agent.owner_page.support import PASSWORD, OwnerPageUnderTest, owner_page
from tests.support.login_from import post_login

PARALLEL = 40
THREAD_POOL = 40  # anyio's default worker threads, shared by every page's blocking work
SLOW_CHECK_S = 0.25
FLOOD_ARRIVES_S = 0.5
PAGE_WAIT_S = 2.0  # the flood's checks alone would take over 10 s
QUEUE_SLACK_S = 2.0  # connecting, parsing, a loaded machine


@pytest.fixture
def page_under_test(tmp_path: Path) -> Iterator[OwnerPageUnderTest]:
    with owner_page(tmp_path, allowed_hosts=["camera.home.arpa"]) as under_test:
        yield under_test


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password check the page really runs (the server is in this process)."""
    ran: list[str] = []
    lock = threading.Lock()
    real = auth.password_matches

    def counted(password_hash: str, password: str) -> bool:
        with lock:
            ran.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "password_matches", counted)
    return ran


def _login(url: str, password: str) -> requests.Response:
    return requests.post(url + "/login", data={"password": password}, timeout=30)


def test_parallel_guesses_get_no_more_checks_than_the_lock_out_allows(
    page_under_test: OwnerPageUnderTest, checks: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = page_under_test.url
    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(lambda n: _login(url, f"guess number {n}"), range(PARALLEL)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) == len(checks) <= auth.LOCKOUT_AFTER
    for answer in (a for a in answers if a.status_code == 429):
        assert int(answer.headers["retry-after"]) >= 1
        assert "being checked" in answer.text or "Too many wrong passwords" in answer.text
        assert "camera_agent_owner" not in answer.cookies
    # One after the other, the rest of the allowance; then the address waits, the right
    # password included, and no check runs at all.
    while len(checks) < auth.LOCKOUT_AFTER:
        assert _login(url, "one more guess").status_code == 401
    locked = _login(url, PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == f"{auth.LOCKOUT_FOR_S:.0f}"
    assert "wait 5 minutes" in locked.text
    assert "camera_agent_owner" not in locked.cookies
    assert len(checks) == auth.LOCKOUT_AFTER and PASSWORD not in checks
    assert "locked out for 300 s" in caplog.text


def _login_from(url: str, source: str, password: str) -> tuple[int, str | None, float]:
    """A login from `source` (another 127.x.y.z: loopback has a whole /8): its status,
    Retry-After and how long it took."""
    start = time.monotonic()
    answer = post_login(url, source, {"password": password})
    return answer.status, answer.retry_after, time.monotonic() - start


def test_logins_from_many_addresses_neither_stall_the_pages_nor_queue_without_end(
    page_under_test: OwnerPageUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = page_under_test.url
    owner = requests.Session()
    owner.post(url + "/login", data={"password": PASSWORD}, timeout=30)
    checking = threading.Event()
    checks = 0
    lock = threading.Lock()

    def slow(password_hash: str, password: str) -> bool:
        nonlocal checks
        with lock:
            checks += 1
        checking.set()
        time.sleep(SLOW_CHECK_S)  # a Pi's Argon2, whatever this machine's speed
        return False

    monkeypatch.setattr(auth, "password_matches", slow)
    flood = THREAD_POOL + 1  # more than the worker threads every page shares
    with ThreadPoolExecutor(flood) as pool:
        futures = [
            pool.submit(_login_from, url, f"127.0.3.{n + 1}", "guess guess") for n in range(flood)
        ]
        assert checking.wait(10)
        time.sleep(FLOOD_ARRIVES_S)  # the rest of the flood reaches the server meanwhile
        start = time.monotonic()
        cameras = owner.get(url + "/", timeout=60)
        took = time.monotonic() - start
        answers = [future.result() for future in futures]
    statuses = [status for status, _, _ in answers]
    assert cameras.status_code == 200 and "Voordeur" in cameras.text
    assert took < PAGE_WAIT_S
    # Some were turned away at once instead of queueing; no login waited for more than the
    # checks that may queue ahead of it (the 41st waited for 40 before: over 10 s).
    assert statuses.count(401) == checks < flood
    assert statuses.count(503) == flood - checks
    assert all(retry == "2" for status, retry, _ in answers if status == 503)
    queue = (1 + auth.MAX_WAITING_LOGINS) * SLOW_CHECK_S
    assert max(took for _, _, took in answers) < queue + QUEUE_SLACK_S


def test_the_lock_out_table_stays_bounded_however_many_addresses_try() -> None:
    limiter = AttemptLimiter(after=2, lock_for=60.0, max_addresses=100)
    addresses = [f"10.0.{n // 256}.{n % 256}" for n in range(10_000)]
    for address in addresses:
        attempt = limiter.begin(address)
        assert isinstance(attempt, Attempt)
        attempt.failed()
        assert len(limiter) <= 100
    # The addresses seen last are still counted: their second failure locks them.
    attempt = limiter.begin(addresses[-1])
    assert isinstance(attempt, Attempt) and attempt.failed()
    refused = limiter.begin(addresses[-1])
    assert isinstance(refused, Refused) and refused.locked


def _get(url: str, host: str) -> requests.Response:
    return requests.get(url + "/login", headers={"Host": host}, timeout=10)


def test_a_foreign_host_name_is_refused_dns_rebinding(
    page_under_test: OwnerPageUnderTest, checks: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = page_under_test.url
    port = url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "localhost.evil.example", "camera"):
        answer = _get(url, host)
        assert answer.status_code == 400, host
        assert "owner_page.allowed_hosts" in answer.text
        assert "Log in" not in answer.text
    posted = requests.post(
        url + "/login", data={"password": PASSWORD}, headers={"Host": "evil.example"}, timeout=10
    )
    assert posted.status_code == 400
    assert "camera_agent_owner" not in posted.cookies
    assert checks == []
    assert re.search(r"refused GET /login from 127\.0\.0\.1: Host 'evil\.example'", caplog.text)


def test_the_devices_own_names_and_any_address_are_answered(
    page_under_test: OwnerPageUnderTest,
) -> None:
    url = page_under_test.url
    port = url.rsplit(":", 1)[1]
    hostname = socket.gethostname().split(".", 1)[0]
    for host in (
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f"[::1]:{port}",
        f"{hostname}:{port}",
        f"{hostname}.local:{port}",
        f"{hostname.upper()}.LOCAL.:{port}",
        "camera.home.arpa",  # owner_page.allowed_hosts
        f"192.168.1.50:{port}",  # the device's own LAN address: an address cannot rebind
        f"[fe80::1]:{port}",
    ):
        answer = _get(url, host)
        assert answer.status_code == 200, host
        assert "Password" in answer.text, host
