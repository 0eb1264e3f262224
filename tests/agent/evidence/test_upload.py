"""Evidence upload against the official Node.js tus server (@tus/server + @tus/file-store)."""

from __future__ import annotations

import hashlib
import http.server
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin

import pytest

from agent.evidence.upload import (
    FOREIGN_LOCATION,
    PROTOCOL,
    REJECTED,
    UNAUTHORIZED,
    UNREACHABLE,
    Uploader,
    UploadError,
    UploadResult,
    UploadStopped,
)
from tests.support import REPO_ROOT, eventually
from tests.support.cutting_proxy import CuttingProxy, Mode
from tests.support.tus_server import TusServer

KiB = 1024
MB = 1_000_000
# Polled often, so the kill or the cut lands close to the byte count it waits for.
CUT_POLL_S = 0.02


def fast_retrying(**settings: Any) -> Uploader:
    """Retries quickly, as tests need; the agent's defaults wait up to 30 s between tries."""
    return Uploader(backoff_base_s=0.1, backoff_cap_s=0.5, **settings)


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def metadata_for(path: Path) -> dict[str, str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"request_id": "req-1", "filename": path.name, "sha256": digest}


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer() as server:
        yield server


@pytest.fixture
def tus_checksum() -> Iterator[TusServer]:
    with TusServer(checksum=True) as server:
        yield server


@pytest.fixture(params=[False, True], ids=["plain", "checksum"])
def any_tus(request: pytest.FixtureRequest) -> Iterator[TusServer]:
    with TusServer(checksum=request.param) as server:
        yield server


def test_file_arrives_byte_identical_with_metadata(any_tus: TusServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "front-20260101T120000Z.mp4", 3 * MB + 123)
    events: list[tuple[str, object]] = []

    result = Uploader(chunk_size=512 * KiB).upload(
        source,
        endpoint=any_tus.endpoint,
        bearer_token=any_tus.token,
        metadata=metadata_for(source),
        on_created=lambda url: events.append(("created", url)),
        on_progress=lambda done, total: events.append(("progress", (done, total))),
    )

    assert any_tus.stored_bytes(result.url) == source.read_bytes()
    assert any_tus.stored_info(result.url)["metadata"] == metadata_for(source)
    assert result == UploadResult(result.url, source.stat().st_size, source.stat().st_size, 0)
    assert events[0] == ("created", result.url)  # before any byte was sent
    assert events[-1] == ("progress", (result.total, result.total))
    stats = any_tus.upload_stats(result.url)
    chunks = -(-result.total // (512 * KiB))
    assert stats.patches == chunks
    assert stats.checksummed == (chunks if any_tus.checksum else 0)


def test_wrong_bearer_token_is_a_permanent_error(tus: TusServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "a.mp4", 100 * KiB)
    started = time.monotonic()
    with pytest.raises(UploadError) as caught:
        fast_retrying().upload(
            source, endpoint=tus.endpoint, bearer_token="forged", metadata=metadata_for(source)
        )
    assert caught.value.reason == UNAUTHORIZED
    assert caught.value.status == 401
    assert "upload token was refused" in str(caught.value)
    assert "forged" not in str(caught.value)
    assert time.monotonic() - started < 2  # not retried
    assert tus.stats()["uploads"] == {}
    assert tus.stats()["unauthorized"] == 1
    assert list(tus.store.iterdir()) == []


@pytest.mark.parametrize("checksum", [False, True], ids=["plain", "checksum"])
def test_resume_after_kill_9_resends_at_most_one_chunk(checksum: bool, tmp_path: Path) -> None:
    chunk = 256 * KiB
    source = random_file(tmp_path / "segment.mp4", 4 * MB)
    url_file = tmp_path / "upload-url"
    with TusServer(checksum=checksum) as tus:

        def child(rate: int) -> subprocess.Popen[bytes]:
            args = [source, tus.endpoint, tus.token, url_file, rate, chunk]
            return subprocess.Popen(
                [sys.executable, "-m", "tests.agent.evidence.upload_child", *map(str, args)],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
            )

        first = child(rate=1 * MB)
        try:
            eventually(url_file.exists, "the upload URL to be persisted", 10, interval=CUT_POLL_S)
            url = url_file.read_text()
            # Kill it mid-chunk: 1.5 MB is not a multiple of 256 KiB.
            eventually(
                lambda: tus.upload_stats(url).received >= 1_500_000,
                "1.5 MB to arrive",
                10,
                interval=CUT_POLL_S,
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        before_restart = tus.upload_stats(url).received
        assert before_restart < source.stat().st_size

        second = child(rate=0)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 0
        sent_now, resumed_from = map(int, out.split())

        assert url_file.read_text() == url  # the same upload, resumed
        assert tus.stored_bytes(url) == source.read_bytes()
        stats = tus.upload_stats(url)
        resent = stats.received - source.stat().st_size
        assert 0 <= resent <= chunk
        assert resumed_from > 0
        assert sent_now == source.stat().st_size - resumed_from
        print(
            f"killed after {before_restart} bytes at the server; resumed from {resumed_from}, "
            f"re-sent {resent} bytes (chunk {chunk})"
        )


@pytest.mark.parametrize("mode", ["reset", "blackhole"])
def test_network_drop_mid_upload_resumes_by_itself(
    mode: Mode, tus_checksum: TusServer, tmp_path: Path
) -> None:
    chunk = 256 * KiB
    outage_s = 4.0
    source = random_file(tmp_path / "segment.mp4", 3 * MB)
    created: list[str] = []
    with CuttingProxy(tus_checksum.port) as proxy:
        uploader = fast_retrying(
            chunk_size=chunk, rate_limit_bytes_per_s=1 * MB, timeout=(1.0, 1.0)
        )

        def outage() -> None:
            eventually(lambda: bool(created), "the upload to be created", 10, interval=CUT_POLL_S)
            eventually(
                lambda: tus_checksum.upload_stats(created[0]).received >= 1 * MB,
                "1 MB",
                10,
                interval=CUT_POLL_S,
            )
            proxy.cut(mode)
            time.sleep(outage_s)
            proxy.restore()

        cutter = threading.Thread(target=outage)
        cutter.start()
        started = time.monotonic()
        result = uploader.upload(
            source,
            endpoint=f"{proxy.origin}/files/",
            bearer_token=tus_checksum.token,
            metadata=metadata_for(source),
            on_created=created.append,
        )
        elapsed = time.monotonic() - started
        cutter.join()

    assert tus_checksum.stored_bytes(result.url) == source.read_bytes()
    assert proxy.refused > 0  # it did try during the outage
    assert elapsed >= outage_s
    resent = tus_checksum.upload_stats(result.url).received - source.stat().st_size
    assert resent <= chunk
    print(f"{mode} outage of {outage_s}s: done in {elapsed:.1f}s, re-sent {resent} bytes")


def test_bandwidth_cap_holds_within_10_percent_over_50_mb(tus: TusServer, tmp_path: Path) -> None:
    cap = 5 * MB
    source = random_file(tmp_path / "big.mp4", 50 * MB)
    started = time.monotonic()
    result = Uploader(rate_limit_bytes_per_s=cap).upload(
        source, endpoint=tus.endpoint, bearer_token=tus.token, metadata=metadata_for(source)
    )
    elapsed = time.monotonic() - started

    stats = tus.upload_stats(result.url)
    (t0, b0), (t1, b1) = stats.timeline[0], stats.timeline[-1]
    server_rate = (b1 - b0) / ((t1 - t0) / 1000)
    client_rate = source.stat().st_size / elapsed
    # The most that arrived within any 2 s.
    peak = max(
        max(b for t, b in stats.timeline if t <= start + 2000) - before
        for start, before in stats.timeline
        if start + 2000 <= t1
    )
    print(
        f"50 MB at a {cap / MB:.0f} MB/s cap: {elapsed:.2f}s; at the server "
        f"{server_rate / MB:.3f} MB/s, client {client_rate / MB:.3f} MB/s, "
        f"peak 2 s {peak / 2 / MB:.3f} MB/s"
    )
    assert tus.stored_bytes(result.url) == source.read_bytes()
    assert 0.9 * cap <= server_rate <= 1.1 * cap
    assert 0.9 * cap <= client_rate <= 1.1 * cap
    assert peak <= 1.1 * cap * 2


class _FakeTus(http.server.BaseHTTPRequestHandler):
    """Answers creation with whatever Location (or status) the test sets; counts PATCHes."""

    location = ""
    status = 201
    patches = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Tus-Resumable", "1.0.0")
        self.send_header("Tus-Version", "1.0.0")
        self.send_header("Tus-Extension", "creation")
        self.end_headers()

    def do_POST(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Tus-Resumable", "1.0.0")
        self.send_header("Location", type(self).location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PATCH(self) -> None:
        type(self).patches += 1
        self.send_response(500)
        self.end_headers()

    do_HEAD = do_PATCH


@pytest.fixture
def fake_tus() -> Iterator[tuple[str, type[_FakeTus]]]:
    handler = type("Handler", (_FakeTus,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/files/", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "location",
    [
        "http://evil.example/files/1",
        "https://{host}/files/1",  # another scheme
        "http://127.0.0.1:1/files/1",  # another port
        "http://127.0.0.2:{port}/files/1",  # another host
        "//evil.example/files/1",  # scheme-relative
        "http://{host}@evil.example/files/1",  # userinfo trick
        "ftp://{host}/files/1",
    ],
)
def test_location_outside_the_endpoint_origin_is_refused(
    location: str, fake_tus: tuple[str, type[_FakeTus]], tmp_path: Path
) -> None:
    endpoint, handler = fake_tus
    host = endpoint.split("/")[2]
    handler.location = location.format(host=host, port=host.split(":")[1])
    source = random_file(tmp_path / "a.mp4", 10 * KiB)
    created: list[str] = []
    with pytest.raises(UploadError) as caught:
        fast_retrying().upload(
            source,
            endpoint=endpoint,
            bearer_token="t",
            metadata=metadata_for(source),
            on_created=created.append,
        )
    assert caught.value.reason == FOREIGN_LOCATION
    assert created == []
    assert handler.patches == 0


def test_a_redirect_is_not_followed(fake_tus: tuple[str, type[_FakeTus]], tmp_path: Path) -> None:
    endpoint, handler = fake_tus
    handler.status = 307
    handler.location = "http://evil.example/files/"
    source = random_file(tmp_path / "a.mp4", 10 * KiB)
    with pytest.raises(UploadError) as caught:
        fast_retrying().upload(
            source, endpoint=endpoint, bearer_token="t", metadata=metadata_for(source)
        )
    assert caught.value.reason == REJECTED
    assert caught.value.status == 307


@pytest.mark.parametrize("location", ["/files/abc", "{endpoint}abc", "HTTP://{host}/files/abc"])
def test_a_location_on_the_endpoint_origin_is_used(
    location: str, fake_tus: tuple[str, type[_FakeTus]], tmp_path: Path
) -> None:
    endpoint, handler = fake_tus
    handler.location = location.format(endpoint=endpoint, host=endpoint.split("/")[2])
    source = random_file(tmp_path / "a.mp4", 10 * KiB)
    stop = threading.Event()
    created: list[str] = []

    def persisted(url: str) -> None:
        created.append(url)
        stop.set()

    with pytest.raises(UploadStopped):
        Uploader().upload(
            source,
            endpoint=endpoint,
            bearer_token="t",
            metadata=metadata_for(source),
            on_created=persisted,
            stop=stop,
        )
    assert created == [urljoin(endpoint, handler.location)]


def test_a_saved_url_of_another_origin_is_refused(tus: TusServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "a.mp4", 10 * KiB)
    with pytest.raises(UploadError) as caught:
        Uploader().upload(
            source,
            endpoint=tus.endpoint,
            bearer_token=tus.token,
            metadata=metadata_for(source),
            resume_url="http://evil.example/files/1",
        )
    assert caught.value.reason == FOREIGN_LOCATION


def test_a_failed_checksum_resends_that_chunk(tus_checksum: TusServer, tmp_path: Path) -> None:
    chunk = 256 * KiB
    source = random_file(tmp_path / "a.mp4", 1 * MB)
    tus_checksum.fault("PATCH", 460)  # the next chunk arrives "corrupted"
    result = fast_retrying(chunk_size=chunk).upload(
        source,
        endpoint=tus_checksum.endpoint,
        bearer_token=tus_checksum.token,
        metadata=metadata_for(source),
    )
    assert tus_checksum.stored_bytes(result.url) == source.read_bytes()
    stats = tus_checksum.upload_stats(result.url)
    assert stats.checksum_failures == 1
    assert stats.received == source.stat().st_size + chunk
    assert result.bytes_sent == source.stat().st_size + chunk


def test_server_errors_are_retried(tus: TusServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "a.mp4", 1 * MB)
    tus.fault("POST", 503)
    tus.fault("PATCH", 500, count=2)
    tus.fault("HEAD", 502)
    result = fast_retrying(chunk_size=256 * KiB).upload(
        source, endpoint=tus.endpoint, bearer_token=tus.token, metadata=metadata_for(source)
    )
    assert tus.stored_bytes(result.url) == source.read_bytes()


def test_an_upload_the_server_forgot_is_created_anew(tus: TusServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "a.mp4", 100 * KiB)
    created: list[str] = []
    forgotten = tus.endpoint + "0123456789abcdef0123456789abcdef"
    result = Uploader().upload(
        source,
        endpoint=tus.endpoint,
        bearer_token=tus.token,
        metadata=metadata_for(source),
        resume_url=forgotten,
        on_created=created.append,
    )
    assert created == [result.url] != [forgotten]
    assert tus.stored_bytes(result.url) == source.read_bytes()


def test_an_upload_of_another_file_is_not_resumed(tus: TusServer, tmp_path: Path) -> None:
    """A manifest re-signed after a crash differs from the one whose upload was begun."""
    old = random_file(tmp_path / "manifest.jws", 100 * KiB, seed=1)
    stop = threading.Event()
    uploader = Uploader(chunk_size=32 * KiB)
    with pytest.raises(UploadStopped) as caught:
        uploader.upload(
            old,
            endpoint=tus.endpoint,
            bearer_token=tus.token,
            metadata=metadata_for(old),
            on_progress=lambda done, total: stop.set(),
            stop=stop,
        )
    new = random_file(tmp_path / "manifest.jws", 100 * KiB, seed=2)
    assert caught.value.url is not None
    result = uploader.upload(
        new,
        endpoint=tus.endpoint,
        bearer_token=tus.token,
        metadata=metadata_for(new),
        resume_url=caught.value.url,
    )
    assert result.url != caught.value.url
    assert tus.stored_bytes(result.url) == new.read_bytes()


def test_stop_ends_between_chunks_and_the_upload_resumes(tus: TusServer, tmp_path: Path) -> None:
    chunk = 64 * KiB
    source = random_file(tmp_path / "a.mp4", 10 * chunk)
    stop = threading.Event()
    uploader = Uploader(chunk_size=chunk)

    def progress(done: int, total: int) -> None:
        if done >= 3 * chunk:
            stop.set()

    with pytest.raises(UploadStopped) as caught:
        uploader.upload(
            source,
            endpoint=tus.endpoint,
            bearer_token=tus.token,
            metadata=metadata_for(source),
            on_progress=progress,
            stop=stop,
        )
    assert caught.value.offset == 3 * chunk
    assert caught.value.url is not None
    result = uploader.upload(
        source,
        endpoint=tus.endpoint,
        bearer_token=tus.token,
        metadata=metadata_for(source),
        resume_url=caught.value.url,
    )
    assert result.url == caught.value.url
    assert result.resumed_from == 3 * chunk
    assert result.bytes_sent == 7 * chunk
    assert tus.upload_stats(result.url).received == source.stat().st_size
    assert tus.stored_bytes(result.url) == source.read_bytes()


def test_an_empty_file_is_complete_at_creation(tus: TusServer, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    result = Uploader().upload(
        source, endpoint=tus.endpoint, bearer_token=tus.token, metadata=metadata_for(source)
    )
    assert result.bytes_sent == 0
    assert tus.stored_bytes(result.url) == b""


class _OddReplies(http.server.BaseHTTPRequestHandler):
    """A tus server whose replies carry what bench/fuzz/tus.py found: numbers that only
    look like digits ('²' is str.isdigit(), but int() refuses it), numbers of thousands
    of digits, and a Location that is no URL at all."""

    options: ClassVar[dict[str, str]] = {}
    location = "/files/abc"
    patch_status = 204
    patch: ClassVar[dict[str, str]] = {}
    head: ClassVar[dict[str, str]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Tus-Resumable": "1.0.0", **headers}.items():
            self.send_header(name, value)  # sent as Latin-1, as http.server does
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:
        self._answer(204, {"Tus-Version": "1.0.0", **type(self).options})

    def do_POST(self) -> None:
        self._answer(201, {"Location": type(self).location})

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(type(self).patch_status, type(self).patch)

    def do_HEAD(self) -> None:
        self._answer(200, type(self).head)


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ({"location": "//[abc/files/1"}, FOREIGN_LOCATION),
        ({"patch": {"Upload-Offset": "\u00b2"}, "head": {"Upload-Offset": "\u00b2"}}, PROTOCOL),
        ({"patch": {"Upload-Offset": "9" * 5000}, "head": {"Upload-Offset": "9" * 5000}}, PROTOCOL),
        # A size limit that is no number is no limit; the upload goes on to the odd offsets.
        (
            {"options": {"Tus-Max-Size": "\u00b9"}, "patch": {"Upload-Offset": "\u00b3"}},
            PROTOCOL,
        ),
        # Retried (from the offset HEAD gives) until give_up_after_s.
        (
            {
                "patch_status": 429,
                "patch": {"Retry-After": "\u00b3"},
                "head": {"Upload-Offset": "0"},
            },
            UNREACHABLE,
        ),
    ],
)
def test_odd_server_replies_end_the_upload_with_its_reason(
    replies: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    handler = type("Handler", (_OddReplies,), replies)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    source = random_file(tmp_path / "a.mp4", 10 * KiB)
    try:
        with pytest.raises(UploadError) as caught:
            fast_retrying(give_up_after_s=0.5).upload(
                source,
                endpoint=f"http://127.0.0.1:{server.server_address[1]}/files/",
                bearer_token="t",
                metadata=metadata_for(source),
            )
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.reason == reason, caught.value
