"""Which package may import which (issue 17): the registry imports nothing from the agent
but the shared contract, the contract imports neither side, and the demo none of them.

Every `.py` file is parsed, so a lazy import inside a function counts as much as one at the
top; a relative import is resolved against the file's own package."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator

import pytest

from tests.support import REPO_ROOT


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
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        relative = path.relative_to(REPO_ROOT)
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
        "space_reserve", "memory", "systemd", "i18n", "daemon_process",
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
    for path in sorted((REPO_ROOT / "agent").rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
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


def module_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports; `from a import b` counts as an import
    of a.b when that is a module."""
    files = {}
    for package in packages:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = (path, parts[:-1])
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, (path, package_parts) in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                (_, module), *_ = imported_modules(ast.unparse(node), package_parts)
                candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {c for c in candidates if c in files and c != name}
    return graph


def test_no_module_imports_itself_round_a_circle() -> None:
    # A cycle makes the import order matter, and a lazy import inside a function is how one
    # hides; every import counts here, wherever it stands.
    graph = module_graph(("agent", "contract", "registry"))
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def test_a_cycle_is_seen() -> None:
    graph = module_graph(("agent",))
    graph["agent.errors"].add("agent.app")  # app imports errors, through others as well
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()
