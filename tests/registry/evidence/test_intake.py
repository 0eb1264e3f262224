"""The registry's tus intake, served by a real uvicorn, fed by the agent's real uploader."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, delete, select, update
from starlette.applications import Starlette
from starlette.routing import Mount

from agent.evidence.export import Package
from agent.evidence.upload import (
    REJECTED,
    TOO_LARGE,
    UNAUTHORIZED,
    UploadError,
    encode_metadata,
)
from contract import jws
from registry.cli import main
from registry.db.schema import agents, evidence_packages, evidence_uploads
from registry.evidence.intake import EvidenceIntake, PackageRecord, package, packages_for_case
from tests.registry.evidence.test_evidence_verify import export_package
from tests.support import eventually
from tests.support.asgi_server import serve_asgi
from tests.support.delivery import fast_uploader, send_package, uploading_request
from tests.support.registry_rows import add_enrolled_agent, add_prepared_request

KiB = 1024
TOKEN = "upload-token-" + "x" * 32
CASE = "2026-ZZ-0042"
MAX_FILE_BYTES = 2 * 1024 * KiB
TUS = {"Tus-Resumable": "1.0.0"}
CHECK_WAIT_S = 15.0  # the package check runs in the background after the last upload


@dataclass
class Intake:
    engine: Engine
    intake: EvidenceIntake
    endpoint: str  # {base}/files/
    device: Ed25519PrivateKey
    root: Path

    def auth(self, token: str = TOKEN) -> dict[str, str]:
        return {**TUS, "Authorization": f"Bearer {token}"}

    def create(self, name: str, data: bytes, **extra: str) -> requests.Response:
        metadata = {
            "request_id": "req-1",
            "filename": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            **extra,
        }
        return requests.post(
            self.endpoint,
            headers={
                **self.auth(),
                "Upload-Length": str(len(data)),
                "Upload-Metadata": encode_metadata(metadata),
            },
            timeout=10,
        )

    def patch(self, url: str, offset: int, data: bytes, **headers: str) -> requests.Response:
        return requests.patch(
            url,
            data=data,
            headers={
                **self.auth(),
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                **headers,
            },
            timeout=10,
        )

    def head(self, url: str) -> requests.Response:
        return requests.head(url, headers=self.auth(), timeout=10)

    def uploads(self) -> list[Mapping[str, object]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(evidence_uploads))]

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"


def add_request(engine: Engine, request_id: str = "req-1", token: str = TOKEN) -> None:
    add_prepared_request(engine, request_id, token, CASE)


@pytest.fixture
def intake(engine: Engine, tmp_path: Path) -> Iterator[Intake]:
    device = Ed25519PrivateKey.generate()
    add_enrolled_agent(engine, device.public_key())
    add_request(engine)
    evidence = EvidenceIntake(engine, tmp_path / "evidence", MAX_FILE_BYTES)
    app = Starlette(routes=[Mount("/files", routes=evidence.routes())])
    with serve_asgi(app) as base:
        yield Intake(engine, evidence, f"{base}/files/", device, tmp_path)


def deliver(env: Intake, pkg: Package, token: str = TOKEN) -> None:
    """The agent's own delivery: every file, then manifest.jws."""
    send_package(env.root, uploading_request("req-1", env.endpoint, token, case=CASE), pkg)


def checked(env: Intake, request_id: str = "req-1") -> PackageRecord:
    def done() -> bool:
        record = package(env.engine, request_id)
        return record is not None and record.checked

    eventually(done, "the package check", CHECK_WAIT_S)
    record = package(env.engine, request_id)
    assert record is not None
    return record


def make_package(env: Intake, key: Ed25519PrivateKey | None = None) -> Package:
    return export_package(env.root / "agent", key or env.device)


# --- the whole flow ---------------------------------------------------------------------------


def test_a_delivered_package_arrives_verified_and_checks_offline(
    intake: Intake, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(intake)
    deliver(intake, pkg)

    record = checked(intake)
    assert record.verified, record.verdict
    assert record.verdict.startswith("verified")
    assert (record.agent, record.case_ref) == ("shop-42", CASE)
    assert record.manifest is not None and record.manifest["request_id"] == "req-1"
    expected = {f.name: f.sha256 for f in pkg.files}
    assert pkg.signed is not None
    expected["manifest.jws"] = hashlib.sha256(pkg.signed.read_bytes()).hexdigest()
    assert {f.name: f.actual_sha256 for f in record.files} == expected
    assert all(f.complete and f.received == f.length for f in record.files)
    assert packages_for_case(intake.engine, CASE) == [record]
    assert packages_for_case(intake.engine, "other-case") == []

    folder = intake.evidence / "req-1"
    for f in pkg.files:
        assert (folder / f.name).read_bytes() == (pkg.directory / f.name).read_bytes()
    assert sorted(p.name for p in (intake.evidence / ".partial").iterdir()) == []
    assert intake.intake.file_path("req-1", pkg.files[0].name) == folder / pkg.files[0].name
    for bad in ("../req-1/manifest.jws", ".partial", "nope.mp4"):
        assert intake.intake.file_path("req-1", bad) is None
    assert intake.intake.file_path("../evidence", "manifest.jws") is None

    # The folder as the registry keeps it checks offline with the key copied in.
    assert (folder / "agent-key.pem").exists()
    assert main(["evidence", "verify", str(folder)]) == 0
    assert f"thumbprint {jws.thumbprint(intake.device.public_key())}" in capsys.readouterr().out


def test_a_package_the_registry_stopped_before_checking_is_checked_at_the_next_start(
    intake: Intake,
) -> None:
    deliver(intake, make_package(intake))
    assert checked(intake).verified
    assert intake.intake.unchecked() == []  # nothing to do at a start after a clean run
    # The registry stopped after the last file arrived and before the check was stored.
    with intake.engine.begin() as conn:
        conn.execute(delete(evidence_packages))
    assert package(intake.engine, "req-1").checked is False  # type: ignore[union-attr]
    assert intake.intake.unchecked() == ["req-1"]

    again = EvidenceIntake(intake.engine, intake.evidence, MAX_FILE_BYTES)  # the next start
    assert again.check_unchecked() == 1
    record = package(intake.engine, "req-1")
    assert record is not None and record.verified, record
    assert again.unchecked() == []


def test_a_file_altered_before_upload_fails_the_package_naming_it(intake: Intake) -> None:
    pkg = make_package(intake)
    victim = pkg.directory / pkg.files[1].name
    data = bytearray(victim.read_bytes())
    data[10] ^= 1
    victim.write_bytes(bytes(data))  # after signing: the manifest still has the old hash

    deliver(intake, pkg)

    record = checked(intake)
    assert not record.verified
    assert f"{victim.name}: SHA-256 differs from the manifest (file altered?)" in record.verdict
    received = {f.name: f for f in record.files}[victim.name]
    assert received.actual_sha256 != received.declared_sha256


def test_a_manifest_signed_by_another_key_is_not_verified(intake: Intake) -> None:
    forger = Ed25519PrivateKey.generate()
    deliver(intake, make_package(intake, forger))

    record = checked(intake)
    assert not record.verified
    assert "not the agent's key" in record.verdict and "forged" in record.verdict


def test_without_an_enrolled_key_the_package_is_not_verified(intake: Intake) -> None:
    with intake.engine.begin() as conn:
        conn.execute(update(agents).values(public_key=None, key_thumbprint=None))
    deliver(intake, make_package(intake))

    record = checked(intake)
    assert not record.verified
    assert record.verdict.startswith("agent shop-42 has no enrolled key")
    assert not (intake.evidence / "req-1" / "agent-key.pem").exists()


# --- auth -------------------------------------------------------------------------------------


def test_a_wrong_bearer_is_refused_logged_and_nothing_stored(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    add_request(intake.engine, "req-2", token="the-other-requests-token")
    pkg = make_package(intake)
    caplog.set_level(logging.INFO, logger="registry.evidence")
    for token in ("forged-token", "the-other-requests-token"):
        with pytest.raises(UploadError) as caught:
            deliver(intake, pkg, token=token)
        assert caught.value.reason == UNAUTHORIZED
        assert caught.value.status == 403
        assert "upload token is not the one of request req-1" in str(caught.value)

    missing = requests.post(intake.endpoint, headers={**TUS, "Upload-Length": "1"}, timeout=10)
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.text
    unknown = requests.post(
        intake.endpoint,
        headers={
            **intake.auth(),
            "Upload-Length": "1",
            "Upload-Metadata": encode_metadata(
                {"request_id": "no-such", "filename": "a", "sha256": "0" * 64}
            ),
        },
        timeout=10,
    )
    assert unknown.status_code == 403

    assert intake.uploads() == []
    assert not (intake.evidence / "req-1").exists()
    assert list((intake.evidence / ".partial").iterdir()) == []
    refusals = [r for r in caplog.records if "wrong upload token" in r.getMessage()]
    assert refusals and all(r.levelno == logging.WARNING for r in refusals)
    assert not any(
        "forged-token" in r.getMessage() or TOKEN in r.getMessage() for r in caplog.records
    )


def test_head_patch_and_delete_need_the_requests_token(intake: Intake) -> None:
    url = intake.create("a.mp4", b"abc").headers["Location"]
    assert requests.head(url, headers=TUS, timeout=10).status_code == 401
    assert requests.head(url, headers=intake.auth("wrong"), timeout=10).status_code == 403
    wrong = requests.patch(
        url,
        data=b"abc",
        headers={
            **intake.auth("wrong"),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=10,
    )
    assert wrong.status_code == 403
    assert requests.delete(url, headers=intake.auth("wrong"), timeout=10).status_code == 403
    assert intake.head(url).headers["Upload-Offset"] == "0"
    assert (
        requests.options(intake.endpoint, headers=intake.auth("wrong"), timeout=10).status_code
        == 403
    )


# --- the protocol -----------------------------------------------------------------------------


def test_options_and_head_headers(intake: Intake) -> None:
    options = requests.options(intake.endpoint, headers=intake.auth(), timeout=10)
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {
        "creation",
        "checksum",
        "termination",
    }
    assert options.headers["Tus-Max-Size"] == str(MAX_FILE_BYTES)
    assert set(options.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}

    created = intake.create("a.mp4", b"hello")
    assert created.status_code == 201
    url = created.headers["Location"]
    assert url.startswith(intake.endpoint) and urlsplit(url).scheme == "http"
    head = intake.head(url)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "5"
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    metadata = dict(pair.split(" ") for pair in head.headers["Upload-Metadata"].split(","))
    assert base64.b64decode(metadata["filename"]) == b"a.mp4"


def test_protocol_errors(intake: Intake) -> None:
    url = intake.create("a.mp4", b"hello").headers["Location"]
    no_version = requests.head(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert no_version.status_code == 412
    assert no_version.headers["Tus-Version"] == "1.0.0"
    assert intake.patch(url, 0, b"he", **{"Content-Type": "text/plain"}).status_code == 415
    mismatch = intake.patch(url, 3, b"lo")
    assert mismatch.status_code == 409
    assert mismatch.headers["Upload-Offset"] == "0"
    assert intake.patch(url, 0, b"hello!").status_code == 413  # past Upload-Length
    assert intake.patch(url, 0, b"he", **{"Upload-Checksum": "md5 xyz"}).status_code == 400
    assert intake.head(url).headers["Upload-Offset"] == "0"
    gone = intake.endpoint + "0" * 32
    assert intake.head(gone).status_code == 404
    assert intake.head(intake.endpoint + "..%2F..%2Fetc").status_code == 404
    assert intake.patch(url, 0, b"hel").headers["Upload-Offset"] == "3"
    assert intake.patch(url, 3, b"lo").headers["Upload-Offset"] == "5"
    assert (intake.evidence / "req-1" / "a.mp4").read_bytes() == b"hello"


def test_headers_found_by_fuzzing_are_refused_with_400_not_a_500(intake: Intake) -> None:
    """bench/fuzz/tus.py: a non-ASCII Upload-Checksum (headers are read as Latin-1) and
    numbers of thousands of digits (Python refuses to read them) were server errors."""
    url = intake.create("a.mp4", b"hello").headers["Location"]
    huge = "9" * 5000
    answers = {
        "checksum": intake.patch(url, 0, b"he", **{"Upload-Checksum": "sha256 47DEQp\xe9j8="}),
        "offset": intake.patch(url, 0, b"he", **{"Upload-Offset": huge}),
        "length": requests.post(
            intake.endpoint,
            headers={
                **intake.auth(),
                "Upload-Length": huge,
                "Upload-Metadata": encode_metadata(
                    {"request_id": "req-1", "filename": "b.mp4", "sha256": "0" * 64}
                ),
            },
            timeout=10,
        ),
    }
    assert {what: r.status_code for what, r in answers.items()} == dict.fromkeys(answers, 400)
    assert "Upload-Checksum" in answers["checksum"].text
    assert "Upload-Offset must be a non-negative whole number" in answers["offset"].text
    assert "Upload-Length must be a non-negative whole number" in answers["length"].text
    assert intake.patch(url, 0, b"hello").headers["Upload-Offset"] == "5"


@pytest.mark.parametrize(
    "name", ["../escape.mp4", "sub/a.mp4", ".hidden", "a" * 129, "agent-key.pem", "", "naïve.mp4"]
)
def test_path_like_or_odd_filenames_are_refused(intake: Intake, tmp_path: Path, name: str) -> None:
    source = tmp_path / "x.mp4"
    source.write_bytes(b"data")
    with pytest.raises(UploadError) as caught:
        fast_uploader().upload(
            source,
            endpoint=intake.endpoint,
            bearer_token=TOKEN,
            metadata={
                "request_id": "req-1",
                "filename": name,
                "sha256": hashlib.sha256(b"data").hexdigest(),
            },
        )
    assert (caught.value.reason, caught.value.status) == (REJECTED, 400)
    assert "plain file name" in str(caught.value)
    assert intake.uploads() == []
    assert not (tmp_path / "evidence" / "escape.mp4").exists()


def test_over_the_size_limit_is_refused(intake: Intake, tmp_path: Path) -> None:
    response = requests.post(
        intake.endpoint,
        headers={
            **intake.auth(),
            "Upload-Length": str(MAX_FILE_BYTES + 1),
            "Upload-Metadata": encode_metadata(
                {"request_id": "req-1", "filename": "big.mp4", "sha256": "0" * 64}
            ),
        },
        timeout=10,
    )
    assert response.status_code == 413
    source = tmp_path / "big.mp4"
    source.write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    with pytest.raises(UploadError) as caught:
        fast_uploader().upload(
            source,
            endpoint=intake.endpoint,
            bearer_token=TOKEN,
            metadata={"request_id": "req-1", "filename": "big.mp4", "sha256": "0" * 64},
        )
    assert caught.value.reason == TOO_LARGE
    assert intake.uploads() == []


def test_a_checksum_mismatch_is_460_and_keeps_nothing(intake: Intake) -> None:
    data = os.urandom(100 * KiB)
    url = intake.create("a.mp4", data).headers["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    response = intake.patch(url, 0, data[: 50 * KiB], **{"Upload-Checksum": f"sha256 {wrong}"})
    assert response.status_code == 460
    assert intake.head(url).headers["Upload-Offset"] == "0"
    upload_id = url.rsplit("/", 1)[1]
    assert (intake.evidence / ".partial" / f"{upload_id}.part").stat().st_size == 0

    for algorithm, half in (("sha1", data[: 50 * KiB]), ("sha256", data[50 * KiB :])):
        digest = base64.b64encode(hashlib.new(algorithm, half).digest()).decode()
        offset = 0 if algorithm == "sha1" else 50 * KiB
        ok = intake.patch(url, offset, half, **{"Upload-Checksum": f"{algorithm} {digest}"})
        assert ok.status_code == 204
    assert (intake.evidence / "req-1" / "a.mp4").read_bytes() == data


def cut_patch(env: Intake, url: str, offset: int, data: bytes, sent: int, checksum: bool) -> None:
    """A PATCH whose connection drops after `sent` of its bytes."""
    parts = urlsplit(url)
    headers = {
        **env.auth(),
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(data)),
        "Host": parts.netloc,
    }
    if checksum:
        headers["Upload-Checksum"] = (
            "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()
        )
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port or 80)) as sock:
        sock.sendall(head.encode() + data[:sent])
        time.sleep(0.2)  # the server reads what came before the cut


def unlocked(part: Path) -> bool:
    """The server has finished with the cut PATCH (it holds an flock while writing)."""
    fd = os.open(part, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.parametrize("checksum", [False, True], ids=["plain", "checksum"])
def test_an_upload_cut_off_mid_patch_resumes_from_the_servers_offset(
    intake: Intake, tmp_path: Path, checksum: bool
) -> None:
    data = os.urandom(300 * KiB)
    source = tmp_path / "front.mp4"
    source.write_bytes(data)
    url = intake.create("front.mp4", data).headers["Location"]
    part = intake.evidence / ".partial" / f"{url.rsplit('/', 1)[1]}.part"

    cut_patch(intake, url, 0, data, 120 * KiB, checksum)
    kept = 0 if checksum else 120 * KiB
    eventually(
        lambda: intake.head(url).headers["Upload-Offset"] == str(kept) and unlocked(part),
        "the cut PATCH to be handled",
        CHECK_WAIT_S,
    )

    result = fast_uploader().upload(
        source,
        endpoint=intake.endpoint,
        bearer_token=TOKEN,
        metadata={
            "request_id": "req-1",
            "filename": "front.mp4",
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        resume_url=url,
    )
    assert result.url == url
    assert result.resumed_from == kept
    assert result.bytes_sent == len(data) - kept
    assert (intake.evidence / "req-1" / "front.mp4").read_bytes() == data
    (row,) = intake.uploads()
    assert row["actual_sha256"] == hashlib.sha256(data).hexdigest()
    assert row["completed_at"] is not None


def test_creating_a_name_again(intake: Intake) -> None:
    first = intake.create("a.mp4", b"hello").headers["Location"]
    intake.patch(first, 0, b"he")
    # Unfinished, the same file: the same upload (the agent lost its state and resumes).
    second = intake.create("a.mp4", b"hello").headers["Location"]
    assert second == first
    assert intake.head(first).headers["Upload-Offset"] == "2"
    assert intake.patch(second, 2, b"llo").status_code == 204
    # Finished, same file: the same upload, already complete.
    again = intake.create("a.mp4", b"hello")
    assert (again.status_code, again.headers["Location"]) == (201, second)
    assert intake.head(second).headers["Upload-Offset"] == "5"
    # Finished, another file: received beside it (a bearer sent first must not block the
    # agent), set aside while the first keeps the name; neither is lost.
    other = intake.create("a.mp4", b"HELLO")
    assert other.status_code == 201 and other.headers["Location"] != second
    assert intake.patch(other.headers["Location"], 0, b"HELLO").status_code == 204
    assert (intake.evidence / "req-1" / "a.mp4").read_bytes() == b"hello"
    aside = other.headers["Location"].rsplit("/", 1)[1]
    assert (intake.evidence / ".partial" / f"{aside}.part").read_bytes() == b"HELLO"
    record = package(intake.engine, "req-1", intake.evidence)
    assert record is not None
    assert [(f.name, f.actual_sha256, f.set_aside) for f in record.files] == [
        ("a.mp4", hashlib.sha256(b"hello").hexdigest(), False),
        ("a.mp4", hashlib.sha256(b"HELLO").hexdigest(), True),
    ]


def test_another_file_of_a_name_being_uploaded_does_not_disturb_it(intake: Intake) -> None:
    mine = intake.create("a.mp4", b"hello").headers["Location"]
    intake.patch(mine, 0, b"he")
    # Someone else with the token starts another file of that name: received beside it.
    theirs = intake.create("a.mp4", b"junk!").headers["Location"]
    assert theirs != mine
    assert intake.head(mine).headers["Upload-Offset"] == "2"
    assert intake.patch(mine, 2, b"llo").status_code == 204
    assert (intake.evidence / "req-1" / "a.mp4").read_bytes() == b"hello"


def test_termination_of_unfinished_uploads_only(intake: Intake) -> None:
    unfinished = intake.create("a.mp4", b"hello").headers["Location"]
    assert requests.delete(unfinished, headers=intake.auth(), timeout=10).status_code == 204
    assert intake.head(unfinished).status_code == 404
    done = intake.create("b.mp4", b"").headers["Location"]  # empty: complete at creation
    assert intake.head(done).headers["Upload-Offset"] == "0"
    assert requests.delete(done, headers=intake.auth(), timeout=10).status_code == 403
    assert (intake.evidence / "req-1" / "b.mp4").read_bytes() == b""
    record = package(intake.engine, "req-1")
    assert record is not None and not record.checked
    assert record.verdict == "not checked yet: the signed manifest has not arrived"
    assert json.dumps([f.name for f in record.files]) == '["b.mp4"]'


def other_spelling(canonical: str) -> str:
    """The same bytes for a lenient decoder: the lowest unused bit of the last character
    before the padding set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = canonical.rstrip("=")
    changed = data[:-1] + alphabet[alphabet.index(data[-1]) ^ 1]
    assert base64.b64decode(changed + "=" * (len(canonical) - len(data))) == base64.b64decode(
        canonical
    )
    return changed + "=" * (len(canonical) - len(data))


def test_base64_in_tus_headers_has_one_spelling_only(intake: Intake) -> None:
    data = b"hello"
    request_id = base64.b64encode(b"req-1").decode()
    filename = base64.b64encode(b"a.mp4").decode()
    digest = base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()
    odd = f"request_id {other_spelling(request_id)},filename {filename},sha256 {digest}"
    response = requests.post(
        intake.endpoint,
        headers={**intake.auth(), "Upload-Length": "5", "Upload-Metadata": odd},
        timeout=10,
    )
    assert response.status_code == 400 and "request_id is not base64" in response.text
    assert intake.uploads() == []
    url = intake.create("a.mp4", data).headers["Location"]
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    refused = intake.patch(
        url, 0, data, **{"Upload-Checksum": f"sha256 {other_spelling(checksum)}"}
    )
    assert refused.status_code == 400 and "not base64" in refused.text
    assert intake.head(url).headers["Upload-Offset"] == "0"
    assert (
        intake.patch(url, 0, data, **{"Upload-Checksum": f"sha256 {checksum}"}).status_code == 204
    )
