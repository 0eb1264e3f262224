"""Preparing and signing a police request. The proof that signing works is the agent's own
verifier accepting the token once the owner pins the public key `keygen` made."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import load_config
from agent.police_requests.setup import policy_of
from agent.police_requests.token import Rejected, Request, verify
from contract import jws
from registry.cli import main
from registry.police.claims import (
    ClaimsError,
    PreparedClaims,
    check_claims_shape,
    describe_claims,
    format_duration,
    prepare_claims,
)

CLI = [str(Path(sys.executable).with_name("camera-registry"))]
UPLOAD = "http://127.0.0.1:9/files/"
NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
END = START + timedelta(minutes=5)


def prepare(now: datetime | None = None, **changes: Any) -> PreparedClaims:
    args: dict[str, Any] = {
        "issuer": "registry.example.org",
        "agent_id": "shop-42",
        "cameras": ["front", "back"],
        "start": START,
        "end": END,
        "kind": "order",
        "case": "2026-1234",
        "basis": "Sv 126nd",
        "requester": "officer 4711",
        "upload_url": UPLOAD,
    }
    args.update(changes)
    return prepare_claims(now=now or datetime.now(UTC), **args)


# --- preparing ------------------------------------------------------------------------------


def test_prepare_claims_fills_in_ids_times_and_the_upload_bearer() -> None:
    prepared = prepare(now=NOW)
    claims = prepared.claims
    assert list(claims) == [
        "iss",
        "aud",
        "jti",
        "iat",
        "exp",
        "kind",
        "case",
        "basis",
        "requester",
        "cameras",
        "window",
        "upload",
    ]
    assert claims["aud"] == "shop-42"
    assert prepared.request_id == claims["jti"]
    assert claims["jti"].startswith("req-") and len(claims["jti"]) <= 64
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == int((NOW + timedelta(hours=24)).timestamp())
    assert claims["window"] == {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T12:05:00Z"}
    assert claims["cameras"] == ["front", "back"]
    token = claims["upload"]["token"]
    assert claims["upload"]["url"] == UPLOAD and len(token) >= 40
    assert prepared.upload_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    again = prepare(now=NOW)
    assert again.claims["jti"] != claims["jti"]
    assert again.claims["upload"]["token"] != token
    assert check_claims_shape(json.loads(json.dumps(claims))) == claims


def test_prepare_claims_window_in_another_zone_is_written_in_utc() -> None:
    cet = START.astimezone(timezone(timedelta(hours=1)))
    assert cet.hour == 13
    claims = prepare(now=NOW, start=cet, end=cet + timedelta(seconds=90.5)).claims
    assert claims["window"] == {"start": "2026-11-27T12:00:00Z", "end": "2026-11-27T12:01:30.500Z"}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"end": START}, "must end after it starts"),
        ({"end": START - timedelta(seconds=1)}, "must end after it starts"),
        ({"start": NOW + timedelta(minutes=5), "end": NOW + timedelta(minutes=10)}, "future"),
        ({"end": NOW + timedelta(minutes=2)}, "future"),
        ({"end": START + timedelta(minutes=61)}, "1 h 1 min, longer than the 1 h allowed"),
        ({"start": START.replace(tzinfo=None)}, "window start has no time zone"),
        ({"kind": "urgent"}, "kind must be one of voluntary, order"),
        ({"agent_id": "Shop-42"}, "agent 'Shop-42' is not an id"),
        ({"agent_id": "shop/42"}, "is not an id"),
        ({"cameras": []}, "at least one camera"),
        ({"cameras": ["front", "front"]}, "named twice"),
        ({"cameras": ["*"]}, "camera '\\*' is not an id"),
        ({"cameras": ["x" * 65]}, "is not an id"),
        ({"case": ""}, "case must be a non-empty text"),
        ({"case": "2026-1\nCameras: all"}, "line breaks or control characters"),
        ({"requester": "officer \u202e1174"}, "line breaks or control characters"),
        ({"basis": "x" * 1001}, "longer than 1000"),
        ({"upload_url": "http://evidence.example.org/files/"}, "must be https://"),
        ({"upload_url": "https://user:pw@evidence.example.org/"}, "no user or password"),
        ({"upload_url": "ftp://127.0.0.1/"}, "must be https://"),
    ],
)
def test_prepare_claims_refuses_what_no_agent_would_accept(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ClaimsError, match=words):
        prepare(now=NOW, **changes)


def test_prepare_claims_max_window_and_validity_are_settings() -> None:
    long_end = START + timedelta(hours=2)
    with pytest.raises(ClaimsError, match="longer than"):
        prepare(now=NOW + timedelta(hours=2), end=long_end)
    claims = prepare(
        now=NOW + timedelta(hours=2),
        end=long_end,
        max_window=timedelta(hours=2),
        validity=timedelta(minutes=30),
    ).claims
    assert claims["exp"] - claims["iat"] == 1800


def test_describe_claims_in_plain_words() -> None:
    claims = prepare(now=NOW).claims
    assert describe_claims(claims) == [
        f"Request {claims['jti']} from registry.example.org",
        "Agent shop-42, cameras front, back",
        "Window 2026-11-27 12:00:00 to 12:05:00 UTC (5 min)",
        "Kind: order (the owner's policy may approve it automatically)",
        "Case 2026-1234, legal basis: Sv 126nd",
        "Requested by officer 4711",
        f"Uploads to {UPLOAD}",
        "Issued 2026-11-27 13:00:00 UTC",
        "Valid until 2026-11-28 13:00:00 UTC",
    ]
    late = prepare(
        now=datetime(2026, 11, 28, 1, tzinfo=UTC),
        start=datetime(2026, 11, 27, 23, 50, tzinfo=UTC),
        end=datetime(2026, 11, 28, 0, 20, 30, tzinfo=UTC),
        kind="voluntary",
    ).claims
    lines = describe_claims(late)
    assert "Window 2026-11-27 23:50:00 to 2026-11-28 00:20:30 UTC (30 min 30 s)" in lines
    assert "Kind: voluntary (the owner is asked and may decline)" in lines


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (300, "5 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (90061, "1 d 1 h"),
    ],
)
def test_format_duration(seconds: int, words: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == words


def changed(claims: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of claims with one field changed (dotted path), or removed (value ...)."""
    copy: dict[str, Any] = json.loads(json.dumps(claims))
    *parents, last = path.split(".")
    target = copy
    for name in parents:
        target = target[name]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("aud", ..., "claims: missing aud"),
        ("upload", ..., "claims: missing upload"),
        ("admin", True, "claims: unexpected admin; not what the registry prepares"),
        ("aud", 42, "aud 42 is not an id"),
        ("jti", "a b", "jti 'a b' is not an id"),
        ("iat", "2026-11-27", "iat must be a number"),
        ("exp", True, "exp must be a number"),
        ("exp", 1, "exp must come after iat"),
        ("kind", "Order", "kind must be one of"),
        ("cameras", "front", "cameras must name at least one camera"),
        ("cameras", [], "cameras must name at least one camera"),
        ("cameras", ["front", 7], "camera 7 is not an id"),
        ("window", [1, 2], "window must be a JSON object"),
        ("window.end", 1764245100, "window end must be an RFC 3339 time"),
        ("window.end", "2026-11-27T12:05:00", "has no time zone"),
        ("window.end", "2026-11-27T11:00:00Z", "must end after it starts"),
        ("window.extra", "x", "window: unexpected extra"),
        ("upload.token", "", "upload token must be a non-empty text"),
        ("upload.url", "https://a@evil.example/", "no user or password"),
        ("upload.cc", "https://evil.example/", "upload: unexpected cc"),
        ("case", "", "case must be a non-empty text"),
        ("nbf", "soon", "nbf must be a number"),
    ],
)
def test_check_claims_shape_refuses_what_the_server_does_not_prepare(
    path: str, value: Any, words: str
) -> None:
    claims = prepare(now=NOW).claims
    with pytest.raises(ClaimsError, match=words):
        check_claims_shape(changed(claims, path, value))


def test_check_claims_shape_refuses_a_non_object() -> None:
    with pytest.raises(ClaimsError, match="claims must be a JSON object"):
        check_claims_shape([1, 2])


# --- signing with the real CLI -----------------------------------------------------------


@pytest.fixture
def police(tmp_path: Path) -> dict[str, Path]:
    """A key pair made by `camera-registry police keygen`, plus an encrypted one."""
    folder = tmp_path / "police"
    assert main(["police", "keygen", "--out", str(folder), "--name", "police-2026"]) == 0
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    assert (
        main(
            [
                "police",
                "keygen",
                "--out",
                str(folder),
                "--name",
                "sealed",
                "--passphrase-file",
                str(secret),
            ]
        )
        == 0
    )
    return {
        "key": folder / "police-2026.key",
        "public": folder / "police-2026.pem",
        "sealed": folder / "sealed.key",
        "sealed_public": folder / "sealed.pem",
        "passphrase": secret,
    }


def agent_config(tmp_path: Path, *public_keys: Path) -> Path:
    """The owner's agent config, pinning the police keys the way docs/police.md says."""
    config = {
        "agent": {"id": "shop-42", "data_dir": str(tmp_path / "agent")},
        "registry": {"broker": "mqtt://127.0.0.1:1883"},
        "police": {"keys": [{"file": str(key)} for key in public_keys], "upload_allow": [UPLOAD]},
        "cameras": [
            {"id": "front", "url": "rtsp://127.0.0.1:8554/front"},
            {"id": "back", "url": "rtsp://127.0.0.1:8554/back"},
        ],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def agent_verifies(config: Path, token: str) -> Request:
    """What the agent itself does with a token that arrives."""
    policy = policy_of(load_config(config))
    return verify(
        token.encode("ascii"),
        policy,
        now=datetime.now(UTC),
        seen=lambda _jti: False,
        oldest_footage=datetime.now(UTC) - timedelta(days=7),
    )


def recent_claims(tmp_path: Path, **changes: Any) -> tuple[PreparedClaims, Path]:
    now = datetime.now(UTC).replace(microsecond=0)
    prepared = prepare(
        now=now, start=now - timedelta(minutes=30), end=now - timedelta(minutes=25), **changes
    )
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(prepared.claims, indent=2))
    return prepared, path


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_signed_token_verifies_with_the_agents_own_verifier(
    tmp_path: Path, police: dict[str, Path]
) -> None:
    prepared, claims_file = recent_claims(tmp_path)
    result = run(["police", "sign", str(claims_file), "--key", str(police["key"]), "--yes"])
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # stdout holds the token and nothing else
    assert "Agent shop-42, cameras front, back" in result.stderr
    assert "(5 min)" in result.stderr
    header = json.loads(jws.b64url_decode(token.split(".")[0]))
    public = jws.public_key_from_pem(police["public"].read_bytes())
    assert header == {"alg": "EdDSA", "typ": "camreg-request+jwt", "kid": jws.thumbprint(public)}

    request = agent_verifies(agent_config(tmp_path, police["public"]), token)
    assert request.id == prepared.request_id
    assert request.cameras == ("front", "back")
    assert request.kind == "order"
    assert request.upload_url == UPLOAD
    assert request.upload_token == prepared.claims["upload"]["token"]
    assert request.claims == prepared.claims


def test_an_agent_that_pins_another_key_rejects_it(tmp_path: Path, police: dict[str, Path]) -> None:
    _, claims_file = recent_claims(tmp_path)
    out = tmp_path / "token.jws"
    code = main(
        [
            "police",
            "sign",
            str(claims_file),
            "--key",
            str(police["key"]),
            "--yes",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert os.stat(out).st_mode & 0o077 == 0  # it carries the upload bearer
    token = out.read_text()
    with pytest.raises(Rejected) as rejected:
        agent_verifies(agent_config(tmp_path, police["sealed_public"]), token)
    assert rejected.value.reason == "unknown_key"
    # Rotation: with both keys pinned, it is accepted.
    both = agent_config(tmp_path, police["sealed_public"], police["public"])
    assert agent_verifies(both, token).cameras == ("front", "back")


def test_encrypted_key_with_its_passphrase_file(tmp_path: Path, police: dict[str, Path]) -> None:
    _, claims_file = recent_claims(tmp_path)
    sign = ["police", "sign", str(claims_file), "--key", str(police["sealed"]), "--yes"]
    result = run([*sign, "--passphrase-file", str(police["passphrase"])])
    assert result.returncode == 0, result.stderr
    request = agent_verifies(agent_config(tmp_path, police["sealed_public"]), result.stdout)
    assert request.case == "2026-1234"

    wrong = tmp_path / "wrong"
    wrong.write_text("incorrect\n")
    result = run([*sign, "--passphrase-file", str(wrong)])
    assert result.returncode == 1
    assert "wrong passphrase" in result.stderr
    assert result.stdout == ""
    # No passphrase and no terminal to ask on.
    result = run(sign)
    assert result.returncode == 1
    assert "is encrypted; give --passphrase-file" in result.stderr


@pytest.mark.parametrize("answer", ["n\n", "y\n", ""])
def test_without_yes_a_pipe_cannot_sign(
    tmp_path: Path, police: dict[str, Path], answer: str
) -> None:
    _, claims_file = recent_claims(tmp_path)
    result = run(["police", "sign", str(claims_file), "--key", str(police["key"])], answer)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no terminal to ask on" in result.stderr
    assert "Agent shop-42" in result.stderr  # the claims were shown all the same


def sign_on_a_terminal(args: list[str], answer: bytes) -> subprocess.CompletedProcess[bytes]:
    """The CLI with its stdin on a pseudo-terminal, as when an officer types the answer."""
    main_fd, terminal_fd = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*CLI, *args], stdin=terminal_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        os.write(main_fd, answer)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(terminal_fd)
        os.close(main_fd)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_officer_declines_on_the_terminal(tmp_path: Path, police: dict[str, Path]) -> None:
    _, claims_file = recent_claims(tmp_path)
    result = sign_on_a_terminal(
        ["police", "sign", str(claims_file), "--key", str(police["key"])], b"n\n"
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"Sign this request? [y/N] " in result.stderr
    assert b"Not signed." in result.stderr


def test_officer_confirms_on_the_terminal(tmp_path: Path, police: dict[str, Path]) -> None:
    prepared, claims_file = recent_claims(tmp_path)
    result = sign_on_a_terminal(
        ["police", "sign", str(claims_file), "--key", str(police["key"])], b"y\n"
    )
    assert result.returncode == 0, result.stderr
    request = agent_verifies(agent_config(tmp_path, police["public"]), result.stdout.decode())
    assert request.id == prepared.request_id


TAMPERED = [
    # The same key twice: the summary and the agent could read different values.
    ('"aud": "shop-42"', '"aud": "shop-42", "aud": "shop-7"', "the key 'aud' appears twice"),
    ('"kind": "order"', '"kind": "order", "scope": "all"', "unexpected scope"),
    ('"cameras": [\n    "front",\n    "back"\n  ]', '"cameras": []', "at least one camera"),
    ('"case": "2026-1234"', '"case": 2026', "case must be a non-empty text"),
    ('"case": "2026-1234"', '"case": "2026-1234\\nAgent shop-7"', "line breaks"),
]


@pytest.mark.parametrize(("old", "new", "words"), TAMPERED)
def test_tampered_claims_file_is_refused(
    tmp_path: Path,
    police: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    words: str,
) -> None:
    _, claims_file = recent_claims(tmp_path)
    text = claims_file.read_text()
    assert old in text
    claims_file.write_text(text.replace(old, new, 1))
    code = main(["police", "sign", str(claims_file), "--key", str(police["key"]), "--yes"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "camera-registry: refused:" in captured.err
    assert words in captured.err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe", "is not UTF-8"),
        (b"[" * 100_000, "over 16384 bytes"),
    ],
)
def test_unreadable_claims_file_is_refused(
    tmp_path: Path,
    police: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    words: str,
) -> None:
    path = tmp_path / "claims.json"
    path.write_bytes(content)
    assert main(["police", "sign", str(path), "--key", str(police["key"]), "--yes"]) == 1
    assert words in capsys.readouterr().err


def test_expired_request_is_signed_with_a_warning(
    tmp_path: Path, police: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    prepared_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    prepared = prepare(
        now=prepared_at,
        start=prepared_at - timedelta(minutes=10),
        end=prepared_at - timedelta(minutes=5),
    )
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(prepared.claims))
    assert main(["police", "sign", str(path), "--key", str(police["key"]), "--yes"]) == 0
    captured = capsys.readouterr()
    expired = prepared_at + timedelta(days=1)
    assert f"warning: this request expired at {expired:%Y-%m-%d %H:%M:%S} UTC" in captured.err
    with pytest.raises(Rejected) as rejected:
        agent_verifies(agent_config(tmp_path, police["public"]), captured.out.strip())
    assert rejected.value.reason == "expired"


def test_sign_refuses_an_existing_out_file_and_a_wrong_key(
    tmp_path: Path, police: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, claims_file = recent_claims(tmp_path)
    out = tmp_path / "token.jws"
    out.write_text("an older token\n")
    sign = ["police", "sign", str(claims_file), "--yes"]
    assert main([*sign, "--key", str(police["key"]), "--out", str(out)]) == 1
    assert "exists already; it is not overwritten" in capsys.readouterr().err
    assert out.read_text() == "an older token\n"
    assert main([*sign, "--key", str(police["public"])]) == 1
    assert "holds a public key" in capsys.readouterr().err
    assert main([*sign, "--key", str(tmp_path / "missing.key")]) == 1
    assert "no key file at" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run(["police", "sign", str(tmp_path / "claims.json")])
    assert result.returncode == 2
    assert "--key" in result.stderr
    assert run(["police"]).returncode == 2
