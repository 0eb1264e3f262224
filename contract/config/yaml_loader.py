"""The YAML loader: reads a config file into a pydantic model and keeps the line of every
key path, so each problem reads "key path: what was wrong (line N)", all of them at once.

PyYAML's safe loader builds plain data without positions; this composes the node tree and
builds the data itself, noting lines and refusing what a config never needs (duplicate
keys, custom tags, self-referencing aliases, alias bombs). The agent's config and the
registry's are both read with it."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from contract.config.fields import Loc
from contract.config.wording import clean_loc as _clean_loc
from contract.config.wording import error_message as _message
from contract.config.wording import format_loc as _format_loc
from contract.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# An alias-heavy file ("billion laughs") expands exponentially; no real config comes near this.
MAX_YAML_NODES = 100_000

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlTree:
    """Plain Python data from a composed YAML node tree, plus the line of every key path."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._active: set[int] = set()  # nodes being built, to catch recursive aliases
        self._nodes = 0
        self.lines: dict[Loc, int] = {}
        self.problems: list[tuple[Loc, str, int]] = []

    def build(self, node: yaml.Node, path: Loc, line: int) -> Any:
        self.lines.setdefault(path, line)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise ConfigError([f"{_format_loc(path)}: too many values (aliases?) (line {line})"])
        if id(node) in self._active:
            self.problems.append((path, "an alias refers to itself", line))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, line)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path, line)
            return self._scalar(node, path, line)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.Node, path: Loc, line: int) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problems.append((path, str(exc.problem), line))
            return None
        except (ValueError, OverflowError) as exc:
            # PyYAML builds a date from what only looks like one (2026-13-01), and such
            # errors come unmarked.
            self.problems.append(
                (path, f"{str(node.value)[:40]!r} is not a valid value ({exc})", line)
            )
            return None

    def _sequence(self, node: yaml.SequenceNode, path: Loc, line: int) -> Any:
        if node.tag != _SEQ_TAG:
            self.problems.append((path, f"unsupported YAML tag {node.tag}", line))
        return [
            self.build(item, (*path, index), item.start_mark.line + 1)
            for index, item in enumerate(node.value)
        ]

    def _mapping(self, node: yaml.MappingNode, path: Loc, line: int) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            self.problems.append((path, f"unsupported YAML tag {node.tag}", line))
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append((path, "a key must be plain text", key_line))
                continue
            key = key_node.value  # the text as written: `on:` stays "on", not True
            if key in result:
                self.problems.append((path, f"duplicate key '{key}'", key_line))
                continue
            result[key] = self.build(value_node, (*path, key), key_line)
        # `<<: *defaults` merges keys not given explicitly; earlier sources win.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                merged = self.build(source, path, source.start_mark.line + 1)
                if not isinstance(merged, dict):
                    self.problems.append((path, "'<<' must merge a mapping", line))
                    continue
                for key, value in merged.items():
                    result.setdefault(key, value)
        return result


def _syntax_error(name: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = f" (line {mark.line + 1})" if mark is not None else ""
    problem = exc.problem or exc.context or "invalid YAML"
    return ConfigError([f"{name}: YAML syntax error: {problem}{line}"])


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int:
    """The line of the key path, or of the nearest enclosing one (for a missing key)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def load_yaml_model(
    path: str | Path, model: type[M], context: Mapping[str, Any] | None = None
) -> M:
    """Read a YAML file into `model`; ConfigError lists every problem by key path and line.

    Shared with the registry's config: one YAML reader with one error format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc

    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character (NUL, ESC, ...) in the text
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            [
                f"{path}: YAML syntax error: character #x{exc.character:04x} is not allowed "
                f"in YAML text (line {line})"
            ]
        ) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([f"{path}: the file is empty; see config.example.yaml"])
        tree = _YamlTree(loader)
        data = tree.build(node, (), node.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(str(path), exc) from exc
    except RecursionError as exc:
        raise ConfigError([f"{path}: nested too deeply"]) from exc
    finally:
        loader.dispose()

    problems = [(line, f"{_format_loc(loc)}: {message}") for loc, message, line in tree.problems]
    config: M | None = None
    try:
        config = model.model_validate(
            data,
            context={"base_dir": path.absolute().parent, "from_file": True, **(context or {})},
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = _clean_loc(error)
            line = _line_of(tree.lines, loc)
            problems.append((line, f"{_format_loc(loc)}: {_message(error)}"))
    if problems or config is None:
        problems.sort(key=lambda problem: problem[0])
        raise ConfigError([f"{text} (line {line})" for line, text in problems])
    return config
