"""The device's clock in the manifest (camreg.evidence.v2 `device_clock`): written by the
agent's exporter, checked and said in words by the verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.clock import ClockEstimate, ClockState
from agent.evidence.export import export_evidence
from agent.recording.index import SegmentIndex
from contract import jws
from registry.cli import main
from registry.evidence.verify import verify_package
from tests.registry.evidence.test_evidence_verify import SEGMENT, T0, export_package, pem


def export_with(tmp_path: Path, key: Ed25519PrivateKey, estimate: ClockEstimate) -> Path:
    export_package(tmp_path / "first", key)  # records footage into first/footage.sqlite
    index = SegmentIndex(tmp_path / "first" / "footage.sqlite")
    package = export_evidence(
        index,
        "shop-42",
        ["front"],
        T0,
        T0 + 2 * SEGMENT,
        tmp_path / "package",
        request_id="req-1",
        case="2026-ZZ-0042",
        key=key,
        device_clock=estimate,
    )
    index.close_db()
    return package.directory


def test_a_synchronised_clock_and_its_estimate_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Ed25519PrivateKey.generate()
    folder = export_with(
        tmp_path, key, ClockEstimate(ClockState(True, "chrony"), -0.000231, 0.0004, 0.012)
    )
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["device_clock"] == {
        "synced": True,
        "source": "chrony",
        "offset_s": -0.000231,
        "estimated_error_s": 0.0004,
        "max_error_s": 0.012,
        "read_by": "adjtimex",
    }
    verdict = verify_package(folder, key.public_key())
    assert verdict.verified, verdict.findings
    line = (
        "when the package was made the agent's clock was synchronised (by chrony); offset "
        "still being corrected -0.000231 s; estimated error ± 0.000400 s; maximum error "
        "0.012000 s"
    )
    assert verdict.device_clock == (line,)
    assert f"\ndevice clock: {line}" in verdict.text()  # the evidence page's words
    (folder / "agent-key.pem").write_bytes(pem(key))
    assert main(["evidence", "verify", str(folder)]) == 0
    assert f"device   {line}" in capsys.readouterr().out


def test_an_unsynchronised_clock_is_said_plainly(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    folder = export_with(tmp_path, key, ClockEstimate(ClockState(False, "none"), 0.0, 16.0, None))
    verdict = verify_package(folder, key.public_key())
    assert verdict.verified  # the footage is what was recorded; its times are the question
    assert verdict.device_clock[0].startswith(
        "when the package was made the agent's clock was NOT synchronised (source none): "
        "the package's times rest on a clock nobody corrected"
    )
    assert verdict.device_clock[0].endswith("maximum error unknown")


def test_a_malformed_device_clock_is_a_finding(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    folder = export_with(tmp_path, key, ClockEstimate(ClockState(True, "ntp"), 0.0, 0.1, 0.2))
    manifest = json.loads((folder / "manifest.json").read_bytes())
    manifest["device_clock"] = {"synced": "yes", "source": "ntp", "offset_s": "0"}
    (folder / "manifest.jws").write_text(
        jws.sign(json.dumps(manifest).encode(), key, "camreg-manifest+jwt")
    )
    verdict = verify_package(folder, key.public_key())
    assert not verdict.verified
    assert verdict.findings == (
        "manifest: device_clock needs synced (true or false), source (a name) and offset_s, "
        "estimated_error_s, max_error_s (numbers or null)",
    )
