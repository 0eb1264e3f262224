"""The owner page's English source strings, found as gettext would: `_("...")`, `N_("...")`
and `ngettext("...", "...", n)` in its Python modules and templates."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from agent import owner_page

PACKAGE = Path(owner_page.__file__).parent
_TEMPLATE_CALL = re.compile(r"""\b(?:_|ngettext)\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_TEMPLATE_PLURAL = re.compile(r"""\bngettext\(\s*"(?:[^"\\]|\\.)*"\s*,\s*("(?:[^"\\]|\\.)*")""")


def source_strings() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id in ("_", "N_", "ngettext"):
                for arg in node.args[: 2 if node.func.id == "ngettext" else 1]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.add(arg.value)
    for path in (PACKAGE / "templates").glob("*.html"):
        text = path.read_text()
        for pattern in (_TEMPLATE_CALL, _TEMPLATE_PLURAL):
            found.update(ast.literal_eval(match) for match in pattern.findall(text))
    return found
