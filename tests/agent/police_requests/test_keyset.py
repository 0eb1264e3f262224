"""The key set an agent holds: only a newer, unexpired, root-signed set replaces it; it
outlives a restart; its revocations and keys decide which request tokens verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.audit import KEYSET_ACCEPTED, AuditLog, describe
from agent.audit.verifier import verify_log
from agent.i18n import translator
from agent.police_requests.keyset import KEYSET_FILE, PoliceKeySets
from agent.police_requests.token import Policy, Rejected, verify
from contract.keyset import KeySetRefused
from tests.support.schemas import assert_valid
from tests.support.tokens import Police, PoliceRoot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOT = PoliceRoot()
OLD, NEW, PINNED = Police(), Police(), Police()


def holder(data_dir: Path, root: PoliceRoot = ROOT, now: datetime = NOW) -> PoliceKeySets:
    return PoliceKeySets(data_dir, {root.kid: root.key.public_key()}, now=lambda: now)


def keyset(
    version: int, keys: list[Police], revoked: tuple[str, ...] = (), **changes: object
) -> bytes:
    return ROOT.keyset({**ROOT.claims(version, keys, revoked, now=NOW), **changes})


def refusal(sets: PoliceKeySets, payload: bytes) -> str:
    with pytest.raises(KeySetRefused) as refused:
        sets.offer(payload)
    return refused.value.reason


def test_only_a_newer_set_replaces_the_one_held(tmp_path: Path) -> None:
    sets = holder(tmp_path)
    assert sets.current() is None and sets.facts() is None
    assert sets.offer(keyset(2, [OLD]))
    assert not sets.offer(keyset(2, [OLD]))  # the retained copy again, after a reconnect
    assert refusal(sets, keyset(2, [OLD, NEW])) == "version_reused"
    assert refusal(sets, keyset(1, [NEW])) == "not_newer"
    assert refusal(sets, PoliceRoot().keyset(ROOT.claims(9, [NEW], now=NOW))) == "unknown_key"
    assert refusal(sets, keyset(9, [NEW], exp=int(NOW.timestamp()) - 3600)) == "claims_invalid"
    held = sets.current()
    assert held is not None and held.version == 2 and set(held.keys) == {OLD.kid}
    assert sets.offer(keyset(3, [NEW], (OLD.kid,)))
    assert sets.facts() == {"version": 3, "expires": "2026-12-31T12:00:00.000Z", "stale": False}


def test_an_expired_set_is_refused_on_arrival(tmp_path: Path) -> None:
    sets = holder(tmp_path, now=NOW + timedelta(days=31))
    assert refusal(sets, keyset(4, [NEW])) == "expired"
    assert sets.current() is None


def test_the_held_set_outlives_a_restart_and_a_replay_stays_refused(tmp_path: Path) -> None:
    holder(tmp_path).offer(keyset(5, [NEW], (OLD.kid,)))
    again = holder(tmp_path)
    held = again.current()
    assert held is not None and held.version == 5 and held.revoked == {OLD.kid}
    assert refusal(again, keyset(4, [OLD])) == "not_newer"
    assert (tmp_path / KEYSET_FILE).stat().st_mode & 0o777 == 0o600
    # Kept past its expiry: still held (its version and revocations), and said to be stale.
    facts = holder(tmp_path, now=NOW + timedelta(days=31)).facts()
    assert facts is not None and facts["version"] == 5 and facts["stale"] is True


def test_a_garbled_file_is_moved_aside_and_the_agent_goes_on(tmp_path: Path) -> None:
    holder(tmp_path).offer(keyset(5, [NEW]))
    (tmp_path / KEYSET_FILE).write_bytes(b"\x00garbled")
    again = holder(tmp_path)
    assert again.current() is None
    assert again.reset is not None and again.reset.kept_as is not None
    assert (tmp_path / again.reset.kept_as).read_bytes() == b"\x00garbled"
    assert again.offer(keyset(1, [NEW]))


def test_a_file_signed_by_a_root_no_longer_pinned_is_moved_aside(tmp_path: Path) -> None:
    holder(tmp_path).offer(keyset(5, [NEW]))
    again = holder(tmp_path, root=PoliceRoot())
    assert again.current() is None and again.reset is not None


def test_arrivals_wait_for_the_desk_thread_and_junk_changes_nothing(tmp_path: Path) -> None:
    sets = holder(tmp_path)
    woken: list[bool] = []
    sets.on_arrival = lambda: woken.append(True)
    for payload in (keyset(2, [OLD]), b"junk", b"x" * 100_000, keyset(1, [NEW])):
        sets.arrived(payload)
    assert sets.current() is None  # nothing judged on the MQTT thread
    sets.apply_arrived()
    held = sets.current()
    assert held is not None and held.version == 2
    assert len(woken) == 3  # the oversized one is dropped on arrival


def policy(sets: PoliceKeySets | None) -> Policy:
    return Policy(
        agent_id="shop-42",
        police_keys={PINNED.kid: PINNED.key.public_key(), OLD.kid: OLD.key.public_key()},
        cameras=frozenset({"front"}),
        max_window=timedelta(hours=1),
        upload_allow=("http://127.0.0.1:9/files/",),
        key_sets=sets,
    )


def reason(token: bytes, policy: Policy, now: datetime = NOW) -> str:
    with pytest.raises(Rejected) as rejected:
        verify(token, policy, now=now, seen=lambda _: False, oldest_footage=None)
    return rejected.value.reason


def test_tokens_by_revoked_unknown_and_stale_keys(tmp_path: Path) -> None:
    sets = holder(tmp_path)
    sets.offer(keyset(3, [NEW], (OLD.kid,)))
    rules = policy(sets)
    claims = NEW.claims(NOW)
    # Past the key check, the request fails on its window (no footage here): the key passed.
    assert reason(NEW.token(claims), rules) == "window_invalid"
    assert reason(PINNED.token(PINNED.claims(NOW)), rules) == "window_invalid"
    # Revoked by the set, though the owner pinned it in police.keys: revocation wins.
    assert reason(OLD.token(OLD.claims(NOW)), rules) == "revoked_key"
    assert reason(Police().token(claims), rules) == "unknown_key"
    # Past the set's expiry its keys sign nothing accepted; the pinned keys still do.
    later = NOW + timedelta(days=30, seconds=1)
    assert reason(NEW.token(NEW.claims(later)), rules, later) == "unknown_key"
    assert reason(PINNED.token(PINNED.claims(later)), rules, later) == "window_invalid"
    assert reason(OLD.token(OLD.claims(later)), rules, later) == "revoked_key"
    assert sets.facts() == {"version": 3, "expires": "2026-12-31T12:00:00.000Z", "stale": False}
    # Without a key set, a pinned key works as it always did.
    assert reason(OLD.token(OLD.claims(NOW)), policy(None)) == "window_invalid"


def test_an_accepted_set_is_written_down_once_with_its_keys_and_its_root(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    sets = holder(tmp_path)
    sets.audit = log
    sets.offer(keyset(1, [OLD]))
    sets.offer(keyset(1, [OLD]))  # the retained copy again: nothing new to write down
    refusal(sets, keyset(1, [NEW]))  # refused sets are not trusted, so not written down
    sets.offer(keyset(2, [NEW], (OLD.kid,)))
    entries = [e for e in log.entries() if e.event == KEYSET_ACCEPTED]
    assert [(e.request_id, e.detail) for e in entries] == [
        (
            None,
            {
                "version": version,
                "issuer": "police.example",
                "root_kid": ROOT.kid,
                "keys": [kid],
                "revoked": revoked,
                "expires": "2026-12-31T12:00:00.000Z",
            },
        )
        for version, kid, revoked in ((1, OLD.kid, []), (2, NEW.kid, [OLD.kid]))
    ]
    for entry in entries:
        assert_valid("audit-entry", json.loads(entry.line()))
    said = describe(entries[1])
    assert "police key set version 2 accepted" in said and ROOT.kid[:12] in said
    assert "1 request key(s) trusted, 1 revoked" in said
    dutch = describe(entries[1], translator("nl"))
    assert "sleutelset van de politie versie 2 aanvaard" in dutch
    assert verify_log(tmp_path / "audit.jsonl").intact
