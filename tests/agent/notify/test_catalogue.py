"""Every message a notification can carry has its Dutch translation, placeholders intact."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.pofile import read_po

import agent.notify.messages as messages
from agent.i18n import LOCALE_DIR

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def used_messages() -> list[str | tuple[str, str]]:
    """The literal msgids of `_()`, `N_()` and `.ngettext()` calls in the renderer."""
    found: list[str | tuple[str, str]] = []
    for node in ast.walk(ast.parse(Path(messages.__file__).read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if name in ("_", "N_") and args:
            found.append(str(args[0]))
        elif name == "ngettext":
            found.append((str(args[0]), str(args[1])))
    return found


def test_every_notification_message_is_translated_to_dutch() -> None:
    with (LOCALE_DIR / "nl" / "LC_MESSAGES" / "camera-agent.po").open("rb") as source:
        catalog = read_po(source, locale="nl")
    used = used_messages()
    assert len(used) > 60
    missing, broken = [], []
    for msgid in used:
        message = catalog.get(msgid)
        if message is None or not message.string or not all(message.string):
            missing.append(msgid)
            continue
        sources = msgid if isinstance(msgid, tuple) else (msgid,)
        string = message.string
        targets = tuple(string) if isinstance(string, tuple | list) else (string,)
        wanted = set(PLACEHOLDER.findall(sources[-1]))
        if any(set(PLACEHOLDER.findall(target)) != wanted for target in targets):
            broken.append(msgid)
    assert missing == [] and broken == []
