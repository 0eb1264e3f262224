"""One fuzz target under atheris, as its own process (atheris.Fuzz never returns).

`python -m bench.fuzz.child TARGET CORPUS_DIR [libFuzzer flags]`: the target's seeds are
written into CORPUS_DIR, the project's modules are imported under atheris's coverage
instrumentation, and libFuzzer runs with the given flags. Started by bench.fuzz.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import sys
from pathlib import Path

import atheris

# Instrumented for coverage: the project's code, plus what a target adds.
PROJECT_PACKAGES = ["agent", "contract", "registry"]
DEFAULT_HOOKS = ("str",)


def main(argv: list[str]) -> None:
    name, corpus = argv[1], Path(argv[2])
    # The parsers log what they refuse; a million warnings would drown libFuzzer's report.
    logging.disable(logging.CRITICAL)
    module = importlib.import_module(f"bench.fuzz.{name}")
    extra = getattr(module, "ALSO_INSTRUMENT", ())
    # Comparisons inside str methods and (where a target asks) regular expressions, C code
    # without coverage of its own, are fed to libFuzzer as hints. The regex hook swaps
    # re's compiled patterns for proxies, which SQLAlchemy cannot take: opt-in per target.
    for hook in getattr(module, "HOOKS", DEFAULT_HOOKS):
        atheris.enabled_hooks.add(hook)
    with atheris.instrument_imports(include=[*PROJECT_PACKAGES, *extra]):
        target = module.build()
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds:
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    atheris.Setup([argv[0], *argv[3:], str(corpus)], target.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
