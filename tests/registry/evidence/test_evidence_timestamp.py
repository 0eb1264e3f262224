"""RFC 3161 time stamps over the signed manifest: asked for by the registry's intake from a
real TSA (OpenSSL's `ts -reply` behind HTTP, tests/support/tsa.py), kept as manifest.tsr,
and checked offline by `camera-registry evidence verify` against the trusted TSA roots."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount

from agent.evidence.export import Package
from registry.cli import main
from registry.config import EvidenceSettings, load_server_config
from registry.evidence.intake import EvidenceIntake
from registry.evidence.timestamp import load_roots
from registry.evidence.tsa_client import Stamper, StampError
from registry.server import stamper
from tests.registry.evidence.test_evidence_verify import export_package, pem
from tests.registry.evidence.test_intake import (
    MAX_FILE_BYTES,
    Intake,
    add_request,
    checked,
    deliver,
    make_package,
)
from tests.support.asgi_server import serve_asgi
from tests.support.registry_rows import add_enrolled_agent
from tests.support.tsa import Tsa, running_tsa


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[Tsa]:
    with running_tsa(tmp_path / "tsa") as running:
        yield running


def stamper_of(tsa: Tsa) -> Stamper:
    return Stamper(tsa.url, tuple(load_roots(tsa.root)), tsa.root)


@pytest.fixture
def stamped_intake(engine: Engine, tmp_path: Path, tsa: Tsa) -> Iterator[Intake]:
    device = Ed25519PrivateKey.generate()
    add_enrolled_agent(engine, device.public_key())
    add_request(engine)
    evidence = EvidenceIntake(engine, tmp_path / "evidence", MAX_FILE_BYTES, stamper_of(tsa))
    app = Starlette(routes=[Mount("/files", routes=evidence.routes())])
    with serve_asgi(app) as base:
        yield Intake(engine, evidence, f"{base}/files/", device, tmp_path)


def openssl_verifies(folder: Path, ca: Path) -> bool:
    """OpenSSL's own check of the stamp, independent of the library the registry uses."""
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(folder / "manifest.jws"),
         "-in", str(folder / "manifest.tsr"), "-CAfile", str(ca)],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0 and "Verification: OK" in done.stdout


def test_a_delivered_package_is_stamped_and_the_stamp_checks_offline(
    stamped_intake: Intake, tsa: Tsa, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    deliver(stamped_intake, make_package(stamped_intake))
    record = checked(stamped_intake)
    assert record.verified, record.verdict
    assert tsa.stamps == 1
    folder = stamped_intake.evidence / "req-1"
    assert (folder / "tsa-roots.pem").read_bytes() == tsa.root.read_bytes()
    assert openssl_verifies(folder, tsa.root)
    # The evidence page shows the verdict's words, the stamp's among them.
    stamp_line = next(
        line for line in record.verdict.splitlines() if line.startswith("time stamp: ")
    )
    assert stamp_line.startswith("time stamp: manifest.jws, with its signature, existed at ")
    when = datetime.fromisoformat(stamp_line.split("existed at ")[1].split(" ")[0])
    assert before <= when <= datetime.now(UTC)
    assert "by CN=Test TSA;" in stamp_line
    # Offline, with the roots the registry copied in (whose fingerprint is printed).
    assert main(["evidence", "verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "ok       RFC 3161 time stamp over manifest.jws verified" in out
    assert "stamp    manifest.jws, with its signature, existed at" in out
    assert "time-stamping roots: " in out


def test_an_unreachable_or_lying_tsa_leaves_no_stamp_and_the_verdict_says_so(
    stamped_intake: Intake, tsa: Tsa, tmp_path: Path
) -> None:
    other = stamper_of(tsa).stamp(b"some other manifest")
    tsa.answer = other  # a stamp, valid, but over other bytes
    deliver(stamped_intake, make_package(stamped_intake))
    record = checked(stamped_intake)
    assert record.verified, record.verdict  # the evidence holds; only the stamp is missing
    assert not (stamped_intake.evidence / "req-1" / "manifest.tsr").exists()
    assert (
        "time stamp: no RFC 3161 time stamp: when the package was signed rests on the "
        "device's own clock" in record.verdict
    )


def test_nobody_may_upload_a_stamp_or_roots(stamped_intake: Intake) -> None:
    for name in ("manifest.tsr", "tsa-roots.pem", "agent-key.pem"):
        answer = stamped_intake.create(name, b"planted")
        assert answer.status_code == 400, name
        assert "not one the registry writes itself" in answer.text


# --- attacks on the stamp, offline -----------------------------------------------------------


@pytest.fixture
def stamped(tmp_path: Path, tsa: Tsa) -> tuple[Package, Ed25519PrivateKey]:
    device = Ed25519PrivateKey.generate()
    package = export_package(tmp_path / "agent", device)
    assert package.signed is not None
    stamp = stamper_of(tsa).stamp(package.signed.read_bytes())
    (package.directory / "manifest.tsr").write_bytes(stamp)
    (package.directory / "agent-key.pem").write_bytes(pem(device))
    return package, device


def verify(folder: Path, roots: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["evidence", "verify", str(folder), "--tsa-roots", str(roots)])
    return code, capsys.readouterr().out


def test_a_good_stamp_verifies(
    stamped: tuple[Package, Ed25519PrivateKey], tsa: Tsa, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify(stamped[0].directory, tsa.root, capsys)
    assert code == 0, out


def test_a_stamp_over_other_data_fails(
    stamped: tuple[Package, Ed25519PrivateKey], tsa: Tsa, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = stamped[0].directory
    (folder / "manifest.tsr").write_bytes(stamper_of(tsa).stamp(b"another manifest"))
    code, out = verify(folder, tsa.root, capsys)
    assert code == 1
    assert "FINDING  manifest.tsr: it stamps other data than this manifest.jws" in out


def test_a_stamp_by_an_untrusted_tsa_fails(
    stamped: tuple[Package, Ed25519PrivateKey],
    tsa: Tsa,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = stamped[0]
    assert package.signed is not None
    with running_tsa(tmp_path / "rogue", name="Rogue TSA") as rogue:
        forged = stamper_of(rogue).stamp(package.signed.read_bytes())
    (package.directory / "manifest.tsr").write_bytes(forged)
    code, out = verify(package.directory, tsa.root, capsys)
    assert code == 1
    assert "FINDING  manifest.tsr: it does not verify against the trusted TSA certificates" in out


def test_a_tampered_stamp_fails(
    stamped: tuple[Package, Ed25519PrivateKey], tsa: Tsa, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = stamped[0].directory
    stamp = bytearray((folder / "manifest.tsr").read_bytes())
    # The time: "YYYYMMDDhhmmssZ" in the token; a year earlier.
    year = str(datetime.now(UTC).year).encode()
    at = stamp.index(year)
    stamp[at : at + 4] = str(int(year) - 1).encode()
    (folder / "manifest.tsr").write_bytes(bytes(stamp))
    code, out = verify(folder, tsa.root, capsys)
    assert code == 1
    assert "FINDING  manifest.tsr: it does not verify" in out
    # Garbage instead of a stamp.
    (folder / "manifest.tsr").write_bytes(b"\x30\x03\x02\x01\x00")
    code, out = verify(folder, tsa.root, capsys)
    assert code == 1 and "FINDING  manifest.tsr is not an RFC 3161 time-stamp response" in out


def test_a_stamp_without_trusted_roots_is_not_checked_and_says_so(
    stamped: tuple[Package, Ed25519PrivateKey], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evidence", "verify", str(stamped[0].directory)]) == 0
    out = capsys.readouterr().out
    assert "but it was not checked: no trusted TSA certificate was given" in out


def test_the_client_refuses_what_is_not_a_stamp_of_its_query(tsa: Tsa, tmp_path: Path) -> None:
    stamper = stamper_of(tsa)
    tsa.answer = b"not a stamp"
    with pytest.raises(StampError, match="gave no valid stamp"):
        stamper.stamp(b"manifest")
    tsa.answer = None
    replayed = stamper.stamp(b"manifest")  # a genuine stamp of an earlier query
    tsa.answer = replayed
    with pytest.raises(StampError, match="nonce differs"):
        stamper.stamp(b"manifest")
    tsa.answer = None
    with pytest.raises(StampError, match="could not be reached"):
        Stamper("http://127.0.0.1:9/tsa", stamper.roots, stamper.roots_file).stamp(b"x")
    assert requests.get(tsa.url, timeout=5).status_code == 501  # POST only


def test_the_tsa_settings_go_together(tsa: Tsa, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tsa_url and tsa_roots go together"):
        EvidenceSettings(tsa_url=tsa.url)
    not_pem = tmp_path / "roots.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match=r"no certificate in it|not PEM"):
        EvidenceSettings(tsa_url=tsa.url, tsa_roots=not_pem)
    roots = tmp_path / "ok.pem"
    shutil.copy(tsa.root, roots)
    assert EvidenceSettings(tsa_url=tsa.url, tsa_roots=roots).tsa_roots == roots


def test_the_registry_config_builds_its_stamper_and_names_a_bad_roots_file(
    tsa: Tsa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "registry.yaml"
    config_file.write_text(
        "mqtt: {broker: 'mqtt://127.0.0.1:1883'}\n"
        f"data_dir: {tmp_path / 'data'}\n"
        f"evidence: {{tsa_url: '{tsa.url}', tsa_roots: '{tsa.root}'}}\n"
    )
    configured = stamper(load_server_config(config_file))
    assert configured is not None and configured.url == tsa.url
    assert configured.stamp(b"a manifest")  # the configured TSA, verified against its roots
    not_pem = tmp_path / "roots.pem"
    not_pem.write_text("hello")
    config_file.write_text(
        "mqtt: {broker: 'mqtt://127.0.0.1:1883'}\n"
        f"evidence: {{tsa_url: '{tsa.url}', tsa_roots: '{not_pem}'}}\n"
    )
    assert main(["check", "--config", str(config_file)]) == 78
    said = capsys.readouterr().err
    assert "evidence.tsa_roots: not PEM certificates (-----BEGIN CERTIFICATE" in said, said
