"""`camera-registry police preservation sign | send`: what the officer signs is a
preservation the agent accepts (kind preserve, no upload, kept as long as asked), what an
agent would refuse is not signed, and what is not a preservation is not sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.police_requests.token import Policy, verify
from contract import jws
from contract.timestamps import rfc3339
from registry.cli import main
from registry.police.keys import load_private_key

NOW = datetime.now(UTC)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    assert main(["police", "keygen", "--out", str(tmp_path), "--name", "officer"]) == 0
    return tmp_path / "officer.key"


def sign(key: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "police", "preservation", "sign", "--agent", "shop-42", "--camera", "front",
            "--start", rfc3339(NOW - timedelta(minutes=10)), "--end", rfc3339(NOW),
            "--case", "2026-77", "--basis", "Sv 126ff", "--requester", "det. Jansen",
            "--key", str(key), "--out", str(out), *extra,
        ]
    )  # fmt: skip


def test_a_signed_preservation_is_what_the_agent_accepts(
    key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.jws"
    assert sign(key, out, "--keep", "3d") == 0
    assert "Signed preservation pr-" in capsys.readouterr().err
    public = load_private_key(key, None).public_key()
    policy = Policy(
        agent_id="shop-42",
        police_keys={jws.thumbprint(public): public},
        cameras=frozenset({"front"}),
        max_window=timedelta(hours=1),
        upload_allow=(),  # a preservation needs no upload allow-list
    )
    request = verify(
        out.read_bytes().strip(),
        policy,
        now=datetime.now(UTC),
        seen=lambda _: False,
        oldest_footage=NOW - timedelta(days=1),
    )
    assert (request.kind, request.upload_url, request.cameras) == ("preserve", "", ("front",))
    assert timedelta(days=3) - (request.expires - request.issued) < timedelta(seconds=2)


def test_what_an_agent_would_refuse_is_not_signed_or_sent(
    key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sign(key, tmp_path / "long.jws", "--keep", "91d") == 1
    assert "at most 90 days" in capsys.readouterr().err
    assert not (tmp_path / "long.jws").exists()
    withdrawal = tmp_path / "w.jws"
    wd = ["police", "withdrawal", "sign", "req-1", "--agent", "shop-42", "--key", str(key)]
    assert main([*wd, "--out", str(withdrawal)]) == 0
    capsys.readouterr()
    for path in (withdrawal, tmp_path / "missing.jws"):
        sent = main(["police", "preservation", "send", str(path), "--config", "/nonexistent"])
        assert sent == 1
        assert "not sent" in capsys.readouterr().err
