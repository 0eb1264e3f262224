"""`camera-registry police keyset sign | show | publish`: what the police sign offline is
what agents accept, and what agents would refuse is not signed or not published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.config import load_config
from agent.police_requests.setup import police_key_sets
from contract import jws
from contract.keyset import verify_keyset
from registry.cli import main
from registry.police.keyset import read_public_key
from tests.support.tokens import Police, PoliceRoot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    assert main(["police", "keygen", "--out", str(tmp_path), "--name", "root"]) == 0
    return tmp_path / "root"


def sign(root: Path, out: Path, *args: str) -> int:
    return main(["police", "keyset", "sign", "--root-key", f"{root}.key", *args, "--out", str(out)])


def test_a_signed_set_is_what_an_agent_pinning_the_root_accepts(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    officer = Police()
    (tmp_path / "officer.jwk").write_text(json.dumps(officer.jwk))
    out = tmp_path / "set.jws"
    assert (
        sign(
            root,
            out,
            "--keys",
            str(tmp_path / "officer.jwk"),
            "--revoke",
            "gone",
            "--version",
            "4",
            "--expires",
            "2d",
        )
        == 0
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"agent: {{id: shop-42, data_dir: {tmp_path / 'state'}}}\n"
        "registry: {broker: 'mqtt://127.0.0.1:1883'}\n"
        f"police: {{root_keys: [{{file: {root}.pem}}]}}\n"
        "cameras: [{id: front, url: 'rtsp://127.0.0.1:1/stream'}]\n"
    )
    sets = police_key_sets(load_config(config))
    assert sets is not None and sets.offer(out.read_bytes())
    held = sets.current()
    assert held is not None and (held.version, set(held.keys), held.revoked) == (
        4,
        {officer.kid},
        frozenset({"gone"}),
    )
    assert (held.expires - datetime.now(UTC)).total_seconds() == pytest.approx(2 * 86400, abs=60)
    capsys.readouterr()
    assert main(["police", "keyset", "show", str(out), "--root", f"{root}.pem"]) == 0
    shown = capsys.readouterr().out
    assert "signature: verifies with root key" in shown and "version: 4" in shown
    assert f"valid key: {officer.kid}" in shown and "revoked: gone" in shown


def test_what_agents_would_refuse_is_not_signed(root: Path, tmp_path: Path) -> None:
    officer = Police()
    pem = tmp_path / "officer.pem"
    pem.write_bytes(
        officer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # A key both valid and revoked; a private key file given as a request key.
    assert (
        sign(
            root, tmp_path / "a.jws", "--keys", str(pem), "--revoke", officer.kid, "--version", "2"
        )
        == 1
    )
    assert sign(root, tmp_path / "b.jws", "--keys", f"{root}.key", "--version", "2") == 1
    with pytest.raises(SystemExit):  # usage: version 0, a negative lifetime
        sign(root, tmp_path / "c.jws", "--version", "0")
    with pytest.raises(SystemExit):
        sign(root, tmp_path / "d.jws", "--version", "3", "--expires", "-1d")
    assert not list(tmp_path.glob("*.jws"))


def test_show_says_when_the_root_is_not_the_signers(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "set.jws"
    assert sign(root, out, "--version", "1") == 0
    assert main(["police", "keygen", "--out", str(tmp_path), "--name", "other"]) == 0
    capsys.readouterr()
    assert main(["police", "keyset", "show", str(out), "--root", str(tmp_path / "other.pem")]) == 1
    assert "signature: REFUSED (unknown_key" in capsys.readouterr().out
    assert main(["police", "keyset", "show", str(out)]) == 0
    assert "signature: NOT checked" in capsys.readouterr().out


def test_publish_refuses_what_is_plainly_not_a_key_set(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    officer = Police()
    token = tmp_path / "request.jws"
    token.write_bytes(officer.token())  # a request token is not a key set
    junk = tmp_path / "junk.jws"
    junk.write_text("hello")
    for wrong in (token, junk):
        # Refused before any broker or config is looked at (there is neither here).
        assert main(["police", "keyset", "publish", str(wrong), "--config", "/nonexistent"]) == 1
        assert "not published" in capsys.readouterr().err


def test_the_set_signed_verifies_with_the_contract_alone(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "set.jws"
    assert sign(root, out, "--version", "9") == 0
    public = read_public_key(Path(f"{root}.pem"))
    assert (
        verify_keyset(
            out.read_bytes(), {jws.thumbprint(public): public}, now=datetime.now(UTC)
        ).version
        == 9
    )


def test_show_reads_a_hostile_set_without_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = tmp_path / "hostile.jws"
    root = PoliceRoot()
    hostile.write_bytes(
        root.keyset({"version": 1, "iat": 1e300, "exp": "soon", "keys": [{"x": 1}]})
    )
    assert main(["police", "keyset", "show", str(hostile)]) == 0
    shown = capsys.readouterr().out
    assert "signed: NOT A TIME" in shown and "expires: NOT A TIME soon" in shown
    assert "valid key: UNUSABLE" in shown
