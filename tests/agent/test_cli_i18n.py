"""The CLI speaks the owner's language (`agent.locale`), and the Dutch catalogue is sound."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from agent.audit import AuditLog
from tests.support import REPO_ROOT
from tests.support.agent_proc import write_config

PO = REPO_ROOT / "agent" / "locale" / "nl" / "LC_MESSAGES" / "camera-agent.po"
# {name}, {name!r}, {name:9}; %s, %d, %(name)s
PLACEHOLDER = re.compile(r"\{[a-z_]*(?:![rsa])?(?::[^}]*)?\}|%(?:\([a-z_]+\))?[sdifr]")


def cli(config: Path, *args: str, lang: str = "C") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": lang}
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def owner_config(tmp_path: Path, locale: str) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        broker_url="mqtt://127.0.0.1:1",
        cameras=[{"id": "front", "url": "rtsp://127.0.0.1:1/stream"}],
        agent={"locale": locale},
    )


@pytest.mark.parametrize(
    ("locale", "valid", "no_requests", "no_footage", "key_created"),
    [
        (
            "nl",
            "in orde (1 camera, agent shop-42)",
            "nog geen verzoeken",
            "nog geen beelden opgenomen",
            "apparaatsleutel aangemaakt in",
        ),
        (
            "en",
            "valid (1 camera, agent shop-42)",
            "no requests yet",
            "no footage recorded yet",
            "device key created in",
        ),
    ],
)
def test_commands_speak_the_configured_language(
    tmp_path: Path, locale: str, valid: str, no_requests: str, no_footage: str, key_created: str
) -> None:
    config = owner_config(tmp_path, locale)
    # The environment says the opposite: the config's locale wins.
    lang = "en_GB.UTF-8" if locale == "nl" else "nl_NL.UTF-8"
    for args, expected in (
        (("check",), valid),
        (("requests", "list"), no_requests),
        (("footage",), no_footage),
        (("keys", "init"), key_created),
    ):
        done = cli(config, *args, lang=lang)
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout, (args, done.stdout)
    shown = cli(config, "keys", "show", "--json", lang=lang)
    assert shown.returncode == 0 and json.loads(shown.stdout)["jwk"]["kty"] == "OKP"


def test_audit_show_in_dutch_and_json_untranslated(tmp_path: Path) -> None:
    config = owner_config(tmp_path, "nl")
    audit = AuditLog(tmp_path / "state" / "audit.jsonl")
    audit.append(
        "received",
        "req-1",
        {"kind": "order", "case": "2026-7", "cameras": ["front"]},
    )
    audit.append("rejected", "3f2a9c0d41b7e815", {"reason": "bad_signature"})
    audit.append("exported", "req-1", {"files": 2, "bytes": 4_000_000})

    done = cli(config, "audit", "show")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "verzoek req-1: ontving een politiebevel voor camera front (zaak 2026-7)" in out[0]
    assert out[1].endswith(
        "verzoek 3f2a9c0d41b7e815: afgewezen — de handtekening van het token klopt niet "
        "(bad_signature)"
    )
    assert "2 bestanden geëxporteerd, 4.0 MB, elk gecontroleerd" in out[2]

    as_json = cli(config, "audit", "show", "--json")
    assert [json.loads(line)["event"] for line in as_json.stdout.splitlines()] == [
        "received",
        "rejected",
        "exported",
    ]
    verified = cli(config, "audit", "verify")
    assert verified.returncode == 0 and "auditlog ongeschonden: 3 regels" in verified.stdout


@pytest.mark.parametrize(
    ("lang", "header"),
    [
        ("nl_NL.UTF-8", ": 1 fout"),
        ("nl_BE", ": 1 fout"),
        ("en_US.UTF-8", ": 1 error"),
        ("C", ": 1 error"),
    ],
)
def test_config_errors_use_the_environment_language(tmp_path: Path, lang: str, header: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "agent: {id: Shop}\nregistry: {broker: mqtt://h}\ncameras: [{id: a, url: x}]\n"
    )
    done = cli(config, "check", lang=lang)
    assert done.returncode == 78
    first, *errors = done.stderr.splitlines()
    assert first.endswith(header)
    # The error itself names its key path in English, whatever the language.
    assert errors[0].startswith("  agent.id: must be 1 to 64 characters")


# --- the catalogue ---------------------------------------------------------------------------


Entry = tuple[str | tuple[str, ...], str | tuple[str, ...], bool]


def catalogue_entries() -> list[Entry]:
    with PO.open("rb") as source:
        catalog = read_po(source, locale="nl", domain="camera-agent")
    entries: list[Entry] = []
    for message in catalog:
        if message.id:
            msgid = message.id if isinstance(message.id, str) else tuple(message.id)
            string = message.string
            msgstr = string if isinstance(string, str) else tuple(string or ())
            entries.append((msgid, msgstr, message.fuzzy))
    return entries


def test_catalogue_parses_and_every_message_is_translated() -> None:
    entries = catalogue_entries()
    assert len(entries) > 100
    for msgid, msgstr, fuzzy in entries:
        assert not fuzzy, msgid
        strings = msgstr if isinstance(msgstr, tuple) else (msgstr,)
        assert all(s.strip() for s in strings), f"untranslated: {msgid!r}"


def test_no_message_is_defined_twice() -> None:
    ids = re.findall(r"^msgid (\".*\")$", PO.read_text(encoding="utf-8"), re.MULTILINE)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_placeholders_match_between_english_and_dutch() -> None:
    for msgid, msgstr, _fuzzy in catalogue_entries():
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
        strings = msgstr if isinstance(msgstr, tuple) else (msgstr,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        # A singular may leave the count out ("one file"); the plural names every value.
        assert set(PLACEHOLDER.findall(ids[0])) <= wanted, ids
        for index, dutch in enumerate(strings):
            found = set(PLACEHOLDER.findall(dutch))
            if index == len(strings) - 1:
                assert found == wanted, f"{ids[0]!r}: {dutch!r}"
            else:
                assert found <= wanted, f"{ids[0]!r}: {dutch!r}"


def source_strings() -> tuple[set[str], str]:
    """Every string constant in agent/ (implicit concatenations joined), and the text of its
    templates and other non-Python files."""
    constants: set[str] = set()
    texts: list[str] = []
    for path in (REPO_ROOT / "agent").rglob("*"):
        if not path.is_file() or path.suffix in (".po", ".pyc", ".mo"):
            continue
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    constants.add(node.value)
        elif path.suffix in (".html", ".txt", ".j2", ".jinja", ".js", ".svg"):
            texts.append(" ".join(path.read_text(encoding="utf-8").split()))
    return constants, "\n".join(texts)


def test_every_message_in_the_catalogue_is_used() -> None:
    constants, templates = source_strings()
    unused = []
    for msgid, _msgstr, _fuzzy in catalogue_entries():
        for english in msgid if isinstance(msgid, tuple) else (msgid,):
            if english not in constants and " ".join(english.split()) not in templates:
                unused.append(english)
    assert unused == []
