"""Attacks on the registry's login through real HTTP: login loops that used to stall every
page (Argon2 on the event loop), password guessing from one address, and parallel guesses
at one account from many addresses. Loopback has a whole /8, so each "attacker" address is
a real source address (127.0.0.x)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from registry.web import auth, login_limits
from registry.web.auth import Role
from tests.support.login_from import post_login
from tests.support.registry_web import PASSWORD, RegistryWeb, registry_web, server_config

LOOPS = 4  # concurrent login loops, each from its own address
LOOP_S = 2.5
# A page answers in a few ms (under 0.1 s on a loaded 2-core CI machine); with Argon2 on
# the event loop it waited about 2 s behind the loops' checks.
PAGE_MEDIAN_S = 0.5


@pytest.fixture
def web(tmp_path: Path, db_url: str) -> Iterator[RegistryWeb]:
    config = server_config(tmp_path, login={"address_lockout_after": 3})
    with registry_web(config, database_url=db_url) as web:
        web.add_user("olga", Role.OPERATOR)
        yield web


@dataclass
class Hashes:
    """Every password check the registry runs: how many, in which threads, most at once."""

    count: int = 0
    running: int = 0
    most: int = 0
    threads: set[str] = field(default_factory=set)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Hashes:
    """Watches the registry's Argon2 checks (its server runs in this process)."""
    seen = Hashes()
    lock = threading.Lock()
    real = auth._verify

    def watched(password_hash: str, password: str) -> bool:
        with lock:
            seen.threads.add(threading.current_thread().name)
            seen.count += 1
            seen.running += 1
            seen.most = max(seen.most, seen.running)
        try:
            return real(password_hash, password)
        finally:
            with lock:
                seen.running -= 1

    monkeypatch.setattr(auth, "_verify", watched)
    return seen


def _post_login(url: str, source: str, name: str, password: str) -> tuple[int, str, str | None]:
    """A login from `source` (127.x.y.z); status, body and Retry-After."""
    answer = post_login(url, source, {"username": name, "password": password})
    return answer.status, answer.body, answer.retry_after


def test_login_loops_do_not_stall_the_pages(web: RegistryWeb, hashes: Hashes) -> None:
    session = requests.Session()
    session.post(web.url + "/login", data={"username": "olga", "password": PASSWORD}, timeout=30)
    assert session.get(web.url + "/api/v1/cameras", timeout=10).status_code == 200
    stop = threading.Event()

    def guess(n: int) -> None:
        # A new address for every guess: the loops are never held back by an address limit.
        tries = 0
        while not stop.is_set():
            source = f"127.{10 + n}.{tries // 250}.{tries % 250 + 1}"
            _post_login(web.url, source, f"nobody{n}", "guess guess guess")
            tries += 1

    latencies = []
    with ThreadPoolExecutor(LOOPS) as pool:
        for n in range(LOOPS):
            pool.submit(guess, n)
        deadline = time.monotonic() + LOOP_S
        while time.monotonic() < deadline:
            start = time.monotonic()
            assert session.get(web.url + "/api/v1/cameras", timeout=30).status_code == 200
            latencies.append(time.monotonic() - start)
            time.sleep(0.05)
        stop.set()
    assert hashes.count >= LOOPS
    assert statistics.median(latencies) < PAGE_MEDIAN_S, latencies
    # Argon2 ran in worker threads, never in the server's event loop, a bounded few at once.
    assert f"uvicorn:{urlsplit(web.url).port}" not in hashes.threads
    assert hashes.most <= login_limits.MAX_CONCURRENT_HASHES


def test_one_address_gets_429_after_its_failures_whatever_user_it_names(
    web: RegistryWeb, hashes: Hashes
) -> None:
    after = web.config.login.address_lockout_after
    answers = [
        _post_login(web.url, "127.0.0.7", f"user{n}", "guess guess guess") for n in range(after)
    ]
    assert all(
        status == 200 and "wrong user name or password" in body for status, body, _ in answers
    )
    status, body, retry_after = _post_login(web.url, "127.0.0.7", "olga", PASSWORD)
    assert status == 429
    assert retry_after is not None and int(retry_after) == int(web.config.login.lockout_for)
    assert "too many failed logins from your address" in body
    assert hashes.count == after
    # Another address is not affected, and olga's account is not locked.
    assert _post_login(web.url, "127.0.0.8", "olga", PASSWORD)[0] == 303


def test_parallel_guesses_get_no_more_checks_than_the_lock_out_allows(
    web: RegistryWeb, hashes: Hashes
) -> None:
    parallel = 40
    with ThreadPoolExecutor(parallel) as pool:
        answers = list(
            pool.map(
                lambda n: _post_login(web.url, f"127.0.1.{n + 1}", "olga", f"guess {n:04d}!!"),
                range(parallel),
            )
        )
    assert all(status == 200 for status, _, _ in answers)
    assert hashes.count <= web.config.login.lockout_after
    # The account is locked now: the right password gets no check either.
    checked = hashes.count
    status, body, _ = _post_login(web.url, "127.0.2.1", "olga", PASSWORD)
    assert status == 200 and "wrong user name or password" in body
    assert hashes.count == checked
