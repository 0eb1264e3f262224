"""`camera-registry police withdrawal sign | send`: what the officer signs is what an agent
accepts as a withdrawal of that request only; what an agent would refuse is not signed,
and what is not a withdrawal is not sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.police_requests.token import Policy, Rejected
from agent.police_requests.withdrawal import verify_withdrawal
from contract import jws
from registry.cli import main
from registry.police.keys import load_private_key


@pytest.fixture
def key(tmp_path: Path) -> Path:
    assert main(["police", "keygen", "--out", str(tmp_path), "--name", "officer"]) == 0
    return tmp_path / "officer.key"


def policy(key: Path, agent: str = "shop-42") -> Policy:
    public = load_private_key(key, None).public_key()
    return Policy(
        agent_id=agent,
        police_keys={jws.thumbprint(public): public},
        cameras=frozenset({"front"}),
        max_window=timedelta(hours=1),
        upload_allow=(),
    )


def test_a_signed_withdrawal_is_what_the_agent_accepts_for_that_request(
    key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w.jws"
    args = ["police", "withdrawal", "sign", "req-7", "--agent", "shop-42", "--key", str(key)]
    assert main([*args, "--reason", "case closed", "--expires", "1h", "--out", str(out)]) == 0
    assert "Signed a withdrawal of request req-7 on agent shop-42" in capsys.readouterr().err
    token = out.read_bytes().strip()
    withdrawal = verify_withdrawal(token, policy(key), now=datetime.now(UTC))
    assert (withdrawal.request_id, withdrawal.reason) == ("req-7", "case closed")
    with pytest.raises(Rejected) as other_agent:
        verify_withdrawal(token, policy(key, "shop-43"), now=datetime.now(UTC))
    assert other_agent.value.reason == "wrong_audience"
    assert main([*args, "--out", str(out)]) == 73  # an existing file is never replaced


@pytest.mark.parametrize(
    ("request_id", "agent", "reason", "said"),
    [
        ("../keys", "shop-42", "", "not a request id"),
        ("req-7", "shop/#", "", "not a agent id"),
        ("req-7", "shop-42", "x" * 501, "over 500 characters"),
    ],
)
def test_what_an_agent_would_refuse_is_not_signed(
    key: Path,
    request_id: str,
    agent: str,
    reason: str,
    said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sign = ["police", "withdrawal", "sign", request_id, "--agent", agent, "--key", str(key)]
    code = main([*sign, "--reason", reason])
    assert code == 1
    err = capsys.readouterr()
    assert said in err.err and err.out == ""


def test_what_is_not_a_withdrawal_is_not_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for content in (b"garbage", b"eyJhbGciOiJFZERTQSIsInR5cCI6ImNhbXJlZy1yZXF1ZXN0K2p3dCJ9.e30.AA"):
        path = tmp_path / "not.jws"
        path.write_bytes(content)
        # No broker is configured or needed: it is refused before anything is sent.
        assert main(["police", "withdrawal", "send", str(path), "--config", "/nonexistent"]) == 1
        assert "not sent" in capsys.readouterr().err
