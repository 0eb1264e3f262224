"""Which package may import which (issue 17): the registry imports nothing from the agent
but the shared contract, the contract imports neither side, and the demo none of them.

Every `.py` file is parsed, so a lazy import inside a function counts as much as one at the
top; a relative import is resolved against the file's own package."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(source: str, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import statement in `source`, a module of `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            yield node.lineno, ".".join([*base, node.module] if node.module else base)


def imports_of(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """Every import under `package` that names one of `forbidden` or a module inside it."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        source = path.read_text(encoding="utf-8")
        for line, module in imported_modules(source, relative.parts[:-1]):
            if module.split(".")[0] in forbidden:
                found.append(f"{relative}:{line}: {module}")
    return found


def test_the_registry_imports_nothing_from_the_agent() -> None:
    assert imports_of("registry", ("agent",)) == []


def test_the_contract_imports_neither_side() -> None:
    assert imports_of("contract", ("agent", "registry")) == []


def test_the_demo_imports_none_of_the_programs() -> None:
    # demo/ is not installed: the simulated camera runs under the system Python, without them.
    assert imports_of("demo", ("agent", "contract", "registry")) == []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import agent\n", "agent"),
        ("import agent.config as c\n", "agent.config"),
        ("from agent.crypto import jws\n", "agent.crypto"),
        ("def f():\n    from agent import __version__\n", "agent"),
        ("from . import topics\n", "registry.ingest"),
        ("from .. import errors\n", "registry"),
        ("from ..web import app\n", "registry.web"),
    ],
)
def test_every_form_of_import_is_seen(source: str, module: str) -> None:
    # As if in registry/ingest/: a relative import resolves against the module's package.
    assert [name for _, name in imported_modules(source, ("registry", "ingest"))] == [module]


# The agent's layers (docs/architecture.md, "Folders, and what each may import"), lowest
# first: a module may import its own layer and those below, never one above. The
# command-line modules (`commands.py`, `*_commands.py`) are the top layer wherever they
# sit, since each registers its area's subcommands and may use anything.
AGENT_LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors", "libc", "clock", "clock_step", "state", "state_files", "sqlite_db",
        "space_reserve", "memory", "systemd", "i18n",
    ),
    ("config", "cli_common", "crypto", "audit", "enrolment", "control", "lifecycle", "onvif"),
    ("quality",),
    ("streams",),
    ("recording",),
    ("mqtt", "reporter", "notify", "evidence", "supervisor"),
    ("police_requests",),
    ("owner_page", "control_handler", "probe"),
    ("app", "setup", "cli", "__main__"),
)  # fmt: skip


def layer_of(parts: tuple[str, ...]) -> int:
    """The layer of agent module `parts` (e.g. ("agent", "recording", "index", "rows"))."""
    if parts[-1] == "commands" or parts[-1].endswith("_commands"):
        return len(AGENT_LAYERS)
    for rank, names in enumerate(AGENT_LAYERS):
        if parts[1] in names:
            return rank
    raise AssertionError(f"{'.'.join(parts)}: add its folder to AGENT_LAYERS")


def test_the_agent_imports_only_downwards() -> None:
    upward = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue
        rank = layer_of(parts)
        for line, module in imported_modules(path.read_text(encoding="utf-8"), parts[:-1]):
            target = tuple(module.split("."))
            if target[0] != "agent" or len(target) < 2 or target[1] == "__init__":
                continue
            if layer_of(target) > rank:
                upward.append(f"{'/'.join(parts)}.py:{line}: {module}")
    assert upward == []


def test_an_upward_import_is_seen() -> None:
    # recording/ reading the request store (what issue 17 found) is what the rule refuses.
    assert layer_of(("agent", "police_requests", "store")) > layer_of(
        ("agent", "recording", "rebuild")
    )
    assert layer_of(("agent", "quality", "commands")) == len(AGENT_LAYERS)
