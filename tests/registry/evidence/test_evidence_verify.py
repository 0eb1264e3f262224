"""Offline verification of evidence packages made by the agent's real exporter."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.evidence.export import Package, export_evidence
from agent.recording.index import ClockRow, SegmentIndex
from contract import jws
from contract.timestamps import rfc3339
from registry.cli import main
from registry.evidence.verify import Asked, verify_package
from tests.support.registry_rows import PACKAGE_WINDOW

T0 = PACKAGE_WINDOW[0]
SEGMENT = timedelta(seconds=60)
KiB = 1024


def export_package(
    root: Path,
    key: Ed25519PrivateKey,
    *,
    request_id: str = "req-1",
    agent: str = "shop-42",
    case: str = "2026-ZZ-0042",
    sizes: tuple[int, ...] = (300 * KiB, 200 * KiB + 7),
    clock_offsets: tuple[tuple[timedelta, float], ...] = (),
) -> Package:
    """A signed package from the agent's exporter: one recorded segment per size."""
    recordings = root / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    index = SegmentIndex(root / "footage.sqlite")
    for number, size in enumerate(sizes):
        start = T0 + number * SEGMENT
        path = recordings / f"front-{number}.mp4"
        data = random.Random(number).randbytes(size)
        path.write_bytes(data)
        segment = index.begin("front", path, start)
        index.close(segment, start + SEGMENT, size, hashlib.sha256(data).hexdigest())
    for after, offset_s in clock_offsets:  # the camera's clock, read at T0 + after
        index.add_clock_reading(ClockRow("front", T0 + after, offset_s, 0.6, "onvif"))
    package = export_evidence(
        index,
        agent,
        ["front"],
        T0,
        T0 + len(sizes) * SEGMENT,
        root / "package",
        request_id=request_id,
        case=case,
        key=key,
    )
    index.close_db()
    return package


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def device() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def package(tmp_path: Path, device: Ed25519PrivateKey) -> Package:
    return export_package(tmp_path, device)


def test_an_intact_package_is_verified(package: Package, device: Ed25519PrivateKey) -> None:
    verdict = verify_package(
        package.directory, device.public_key(), request_id="req-1", agent="shop-42"
    )
    assert verdict.verified, verdict.findings
    assert verdict.findings == ()
    assert verdict.key_thumbprint == jws.thumbprint(device.public_key())
    assert verdict.manifest is not None and len(verdict.manifest["files"]) == 2
    assert any("manifest signature valid" in line for line in verdict.checked)
    assert verdict.text().startswith("verified")


def test_an_altered_file_is_named(package: Package, device: Ed25519PrivateKey) -> None:
    name = package.files[0].name
    target = package.directory / name
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(data))

    verdict = verify_package(package.directory, device.public_key())

    assert not verdict.verified
    assert verdict.findings == (f"{name}: SHA-256 differs from the manifest (file altered?)",)


def test_a_truncated_missing_or_extra_file_is_reported(
    package: Package, device: Ed25519PrivateKey
) -> None:
    first, second = (package.directory / f.name for f in package.files)
    first.write_bytes(first.read_bytes()[:-1])
    second.unlink()
    (package.directory / "stray.txt").write_text("not evidence")

    verdict = verify_package(package.directory, device.public_key())

    assert not verdict.verified
    assert (
        f"{first.name}: {package.files[0].bytes - 1} bytes, the manifest says "
        f"{package.files[0].bytes} (incomplete or altered)" in verdict.findings
    )
    assert f"{second.name}: missing (listed in the manifest)" in verdict.findings
    assert (
        "stray.txt: not listed in the manifest, so not part of the signed evidence"
        in verdict.findings
    )


def test_only_an_extra_file_does_not_fail_the_signed_evidence(
    package: Package, device: Ed25519PrivateKey
) -> None:
    (package.directory / "notes.txt").write_text("the officer's notes")
    verdict = verify_package(package.directory, device.public_key())
    assert verdict.verified
    assert verdict.findings == (
        "notes.txt: not listed in the manifest, so not part of the signed evidence",
    )


def test_a_manifest_signed_by_another_key_is_forged(
    package: Package, device: Ed25519PrivateKey
) -> None:
    forger = Ed25519PrivateKey.generate()
    signed = package.signed
    assert signed is not None
    signed.write_text(jws.sign(package.manifest.read_bytes(), forger, "camreg-manifest+jwt"))

    verdict = verify_package(package.directory, device.public_key())

    assert not verdict.verified
    assert any("not the agent's key" in f and "forged" in f for f in verdict.findings)
    assert any("does not verify" in f for f in verdict.findings)


def test_a_manifest_edited_after_signing_does_not_verify(
    package: Package, device: Ed25519PrivateKey
) -> None:
    signed = package.signed
    assert signed is not None
    head, body, signature = signed.read_text().strip().split(".")
    manifest = json.loads(jws.b64url_decode(body))
    manifest["window"]["end"] = "2026-11-27T13:00:00.000Z"
    body = jws.b64url_encode(json.dumps(manifest).encode())
    signed.write_text(f"{head}.{body}.{signature}\n")

    verdict = verify_package(package.directory, device.public_key())

    assert not verdict.verified
    assert any("does not verify" in f for f in verdict.findings)


def header_token(header: dict[str, object], payload: bytes, key: Ed25519PrivateKey) -> str:
    signing_input = (
        jws.b64url_encode(json.dumps(header).encode()) + "." + jws.b64url_encode(payload)
    )
    return signing_input + "." + jws.b64url_encode(key.sign(signing_input.encode()))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"alg": "none"}, "alg is 'none'"),
        ({"alg": "HS256"}, "alg is 'HS256'"),
        ({"typ": "camreg-request+jwt"}, "typ is 'camreg-request+jwt'"),
        ({"typ": None}, "typ is None"),
        ({"kid": "someone-else"}, "signed with key 'someone-else'"),
        ({"crit": ["b64"]}, "'crit'"),
    ],
)
def test_header_rules(
    package: Package, device: Ed25519PrivateKey, change: dict[str, object], expected: str
) -> None:
    header: dict[str, object] = {
        "alg": "EdDSA",
        "typ": "camreg-manifest+jwt",
        "kid": jws.thumbprint(device.public_key()),
    }
    header.update(change)
    header = {k: v for k, v in header.items() if v is not None}
    assert package.signed is not None
    package.signed.write_text(header_token(header, package.manifest.read_bytes(), device))

    verdict = verify_package(package.directory, device.public_key())

    assert not verdict.verified
    assert any(expected in f for f in verdict.findings), verdict.findings


@pytest.mark.parametrize(
    "content",
    [b"", b"a.b", b"not.a.jws!", b"e30.e30.e30.e30", b"\xff\xfe"],
    ids=["empty", "two-parts", "bad-b64", "four-parts", "binary"],
)
def test_malformed_jws_is_not_a_package(
    package: Package, device: Ed25519PrivateKey, content: bytes
) -> None:
    assert package.signed is not None
    package.signed.write_bytes(content)
    verdict = verify_package(package.directory, device.public_key())
    assert not verdict.verified
    assert verdict.manifest is None
    assert any("manifest.jws is not a compact JWS" in f for f in verdict.findings)


def test_duplicate_keys_and_schema_errors_are_reported(
    package: Package, device: Ed25519PrivateKey
) -> None:
    assert package.signed is not None
    manifest = json.loads(package.manifest.read_bytes())
    duplicated = b'{"schema": "x", ' + json.dumps(manifest).encode()[1:]
    package.signed.write_text(jws.sign(duplicated, device, "camreg-manifest+jwt"))
    verdict = verify_package(package.directory, device.public_key())
    assert any("the key 'schema' appears twice" in f for f in verdict.findings)

    manifest["schema"] = "camreg.evidence.v3"
    manifest["files"][0]["bytes"] = "12"
    manifest["files"][1]["sha256"] = "ABC"
    package.signed.write_text(
        jws.sign(json.dumps(manifest).encode(), device, "camreg-manifest+jwt")
    )
    verdict = verify_package(package.directory, device.public_key())
    assert not verdict.verified
    assert (
        "manifest: schema is 'camreg.evidence.v3', not 'camreg.evidence.v1' or "
        "'camreg.evidence.v2'" in verdict.findings
    )
    assert "manifest: file 1: bytes must be a whole number" in verdict.findings
    assert "manifest: file 2: sha256 must be 64 lower-case hex digits" in verdict.findings


@pytest.mark.parametrize(
    "name", ["../escape.mp4", "/etc/passwd", "sub/dir.mp4", ".hidden", "manifest.jws"]
)
def test_path_like_names_in_the_manifest_are_never_read(
    tmp_path: Path, package: Package, device: Ed25519PrivateKey, name: str
) -> None:
    (tmp_path / "escape.mp4").write_bytes(b"outside")
    manifest = json.loads(package.manifest.read_bytes())
    manifest["files"][0]["name"] = name
    assert package.signed is not None
    package.signed.write_text(
        jws.sign(json.dumps(manifest).encode(), device, "camreg-manifest+jwt")
    )
    verdict = verify_package(package.directory, device.public_key())
    assert not verdict.verified
    assert (
        f"{name!r}: not an acceptable file name (path parts or a reserved name); not read"
        in verdict.findings
    )


def test_expectations_and_no_key(package: Package, device: Ed25519PrivateKey) -> None:
    verdict = verify_package(
        package.directory, device.public_key(), request_id="req-2", agent="other"
    )
    assert "manifest: request_id is 'req-1', expected 'req-2'" in verdict.findings
    assert "manifest: agent is 'shop-42', expected 'other'" in verdict.findings

    verdict = verify_package(package.directory, None)
    assert not verdict.verified
    assert verdict.findings == (
        "manifest signature: not checked, there is no public key of the agent to check it against",
    )


ASKED = Asked(case="2026-ZZ-0042", cameras=("front",), start=T0, end=T0 + 2 * SEGMENT)


def test_a_manifest_for_what_was_asked_verifies(
    package: Package, device: Ed25519PrivateKey
) -> None:
    # Times the agent wrote to the millisecond, compared with a float column's rounding.
    asked = replace(ASKED, start=T0 + timedelta(microseconds=300))
    verdict = verify_package(package.directory, device.public_key(), asked=asked)
    assert verdict.verified, verdict.text()
    assert "manifest is for the requested case, cameras and window" in verdict.checked


@pytest.mark.parametrize(
    ("asked", "findings"),
    [
        (
            replace(ASKED, case="2026-ZZ-0099"),
            ["manifest: case is '2026-ZZ-0042', the request's is '2026-ZZ-0099'"],
        ),
        (
            replace(ASKED, cameras=("yard",)),
            [
                "manifest: cameras are front, the request named yard",
                "manifest: file 1 ('front_20261127T120000.000000Z.mp4') is of camera 'front', "
                "not a requested one",
                "manifest: file 2 ('front_20261127T120100.000000Z.mp4') is of camera 'front', "
                "not a requested one",
            ],
        ),
        (
            replace(ASKED, start=T0 + SEGMENT, end=T0 + 3 * SEGMENT),
            [
                "manifest: window is 2026-11-27T12:00:00Z to 2026-11-27T12:02:00Z, the "
                "request's is 2026-11-27T12:01:00Z to 2026-11-27T12:03:00Z",
            ],
        ),
        (
            replace(ASKED, start=T0 + 5 * SEGMENT, end=T0 + 6 * SEGMENT),
            [
                "manifest: window is 2026-11-27T12:00:00Z to 2026-11-27T12:02:00Z, the "
                "request's is 2026-11-27T12:05:00Z to 2026-11-27T12:06:00Z",
                "manifest: file 1 ('front_20261127T120000.000000Z.mp4') lies outside the "
                "requested window",
                "manifest: file 2 ('front_20261127T120100.000000Z.mp4') lies outside the "
                "requested window",
            ],
        ),
    ],
    ids=["case", "cameras", "window", "files-outside"],
)
def test_a_validly_signed_manifest_of_something_else_is_not_verified(
    package: Package, device: Ed25519PrivateKey, asked: Asked, findings: list[str]
) -> None:
    verdict = verify_package(package.directory, device.public_key(), asked=asked)
    assert not verdict.verified
    assert list(verdict.findings) == findings
    assert any(line.startswith("manifest signature valid") for line in verdict.checked)


def test_a_symlinked_file_is_not_followed(
    package: Package, device: Ed25519PrivateKey, tmp_path: Path
) -> None:
    target = package.directory / package.files[0].name
    moved = tmp_path / "elsewhere.mp4"
    target.rename(moved)
    target.symlink_to(moved)
    verdict = verify_package(package.directory, device.public_key())
    assert f"{target.name}: not a regular file (a link or a folder)" in verdict.findings


# --- the command ------------------------------------------------------------------------------


def test_command_verifies_with_the_key_in_the_folder_or_given(
    package: Package,
    device: Ed25519PrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (package.directory / "agent-key.pem").write_bytes(pem(device))
    assert main(["evidence", "verify", str(package.directory)]) == 0
    out = capsys.readouterr().out
    assert f"thumbprint {jws.thumbprint(device.public_key())}" in out
    assert out.strip().endswith("VERIFIED") and "NOT VERIFIED" not in out
    assert f"ok       {package.files[0].name}: {package.files[0].bytes} bytes" in out

    jwk_file = tmp_path / "device.jwk"
    jwk_file.write_text(json.dumps(jws.public_jwk(device.public_key())))
    assert (
        main(
            [
                "evidence",
                "verify",
                str(package.directory),
                "--key",
                str(jwk_file),
                "--request-id",
                "req-1",
                "--agent",
                "shop-42",
            ]
        )
        == 0
    )


def test_command_refuses_an_altered_package(
    package: Package, device: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    (package.directory / "agent-key.pem").write_bytes(pem(device))
    target = package.directory / package.files[1].name
    target.write_bytes(b"\0" * target.stat().st_size)
    assert main(["evidence", "verify", str(package.directory)]) == 1
    out = capsys.readouterr().out
    assert f"FINDING  {target.name}: SHA-256 differs from the manifest (file altered?)" in out
    assert out.strip().endswith("NOT VERIFIED")


def test_command_with_another_key_says_not_verified(
    package: Package, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pem(Ed25519PrivateKey.generate()))
    assert main(["evidence", "verify", str(package.directory), "--key", str(other)]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().out


def test_command_usage_errors_exit_2(
    package: Package, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evidence", "verify", str(package.directory)]) == 2  # no agent-key.pem
    assert "give the agent's public key with --key" in capsys.readouterr().out
    assert main(["evidence", "verify", str(tmp_path / "nope")]) == 2
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    assert main(["evidence", "verify", str(package.directory), "--key", str(garbage)]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["evidence", "verify"])
    assert exited.value.code == 2


def test_a_package_with_camera_clock_offsets_is_v2_and_says_them(
    tmp_path: Path, device: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    minute = timedelta(minutes=1)
    package = export_package(
        tmp_path,
        device,
        # Readings every ten minutes; the window is T0 to T0 + 2 min.
        clock_offsets=(
            (-20 * minute, 89.2),
            (-10 * minute, 90.1),
            (8 * minute, 90.4),
            (18 * minute, 91.0),
        ),
    )
    manifest = json.loads(package.manifest.read_bytes())
    assert manifest["schema"] == "camreg.evidence.v2"
    # The last reading before the window through the first after it.
    readings = manifest["clocks"]["cameras"]["front"]
    assert [r["offset_s"] for r in readings] == [90.1, 90.4]
    assert readings[0] == {
        "at": rfc3339(T0 - 10 * minute),
        "offset_s": 90.1,
        "uncertainty_s": 0.6,
        "source": "onvif",
    }
    verdict = verify_package(package.directory, device.public_key(), request_id="req-1")
    assert verdict.verified, verdict.findings
    assert "manifest follows camreg.evidence.v2" in verdict.checked
    assert verdict.clocks == (
        "camera front: its own clock (the time in its picture) was 90.2 s ahead of the "
        "agent's synchronised clock, within ± 0.6 s (2 readings from "
        f"{readings[0]['at']} to {readings[1]['at']}, from onvif); positive: the picture's "
        "time is ahead of the package's",
    )
    # The registry's evidence page shows the verdict's text, with the clocks in it.
    assert f"\nclock: {verdict.clocks[0]}" in verdict.text()
    (package.directory / "agent-key.pem").write_bytes(pem(device))
    assert main(["evidence", "verify", str(package.directory)]) == 0
    out = capsys.readouterr().out
    assert "clock    camera front: its own clock (the time in its picture) was 90.2 s ahead" in out


def test_a_v1_package_of_an_older_agent_still_verifies(
    package: Package, device: Ed25519PrivateKey
) -> None:
    # Every package is v2 now (the chain and the device clock are always there); an
    # older agent's v1 package verifies, and the verdict says the chain is not there.
    manifest = json.loads(package.manifest.read_bytes())
    assert manifest["schema"] == "camreg.evidence.v2"
    assert "clocks" not in manifest  # no camera clock was read
    for member in ("chain", "device_clock"):
        del manifest[member]
    manifest["schema"] = "camreg.evidence.v1"
    assert package.signed is not None
    package.signed.write_text(
        jws.sign(json.dumps(manifest).encode(), device, "camreg-manifest+jwt")
    )
    verdict = verify_package(package.directory, device.public_key())
    assert verdict.verified, verdict.findings
    assert verdict.chain == (
        "no segment chain in this manifest: that no file is missing between the first and "
        "the last is not proven",
    )
    assert verdict.device_clock == ()


def test_malformed_clocks_in_a_v2_manifest_are_findings(
    package: Package, device: Ed25519PrivateKey
) -> None:
    assert package.signed is not None
    manifest = json.loads(package.manifest.read_bytes())
    manifest["schema"] = "camreg.evidence.v2"
    manifest["clocks"] = {"cameras": {"front": [{"at": "yesterday", "offset_s": 3}], "back": []}}
    package.signed.write_text(
        jws.sign(json.dumps(manifest).encode(), device, "camreg-manifest+jwt")
    )
    verdict = verify_package(package.directory, device.public_key())
    assert not verdict.verified
    assert "manifest: clocks of camera 'back': not a camera of the package" in verdict.findings
    assert any(
        f.startswith("manifest: clocks of camera 'front', reading 1: needs at")
        for f in verdict.findings
    )

    # v2 is v1 plus optional members: without `clocks` (and with members this verifier
    # does not know yet, such as a later segment chain) it verifies.
    del manifest["clocks"]
    manifest["segment_chain"] = {"later": "work"}
    package.signed.write_text(
        jws.sign(json.dumps(manifest).encode(), device, "camreg-manifest+jwt")
    )
    verdict = verify_package(package.directory, device.public_key())
    assert verdict.verified, verdict.findings
    assert verdict.clocks == ()
