"""Fault bench: ordinary faults a Pi meets, each run end to end against the real agent, and
what survived (issue 15).

Every scenario lives in its own module under `bench/fault_scenarios/` (full disk, broken
state files, wall-clock steps, odd camera streams, garbage cameras beside a good one). Each
starts its own mosquitto, cameras and agent in a temporary folder, does its damage, and
reports whether health kept flowing, footage was kept and recording resumed, with numbers.

    PYTHONPATH=. .venv/bin/python bench/faults.py [--only NAME[,NAME]] [--short] [--keep]

`--short` runs each scenario in a few seconds, as the CI tests do; without it each runs at
full length (see bench/README.md for how long). Some scenarios mount a tmpfs and so need
root. Exits 1 when a scenario did not survive (its folder is kept then), 2 when the setup
fails, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bench import fault_scenarios, harness


def scenarios() -> dict[str, ModuleType]:
    """Every scenario module, by its NAME, in module-name order."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(fault_scenarios.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{fault_scenarios.__name__}.{info.name}")
        found[module.NAME] = module
    return found


def run(args: argparse.Namespace) -> int:
    known = scenarios()
    chosen = list(known) if not args.only else args.only.split(",")
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise harness.SetupError(f"no scenario {', '.join(unknown)}; there are: {', '.join(known)}")
    print(harness.machine(), flush=True)
    failed: list[str] = []
    for name in chosen:
        module = known[name]
        work = Path(tempfile.mkdtemp(prefix=f"faults-{name}-"))
        print(f"\n## {name}: {module.WHAT}", flush=True)
        began = time.monotonic()
        outcome = module.run(work, short=args.short)
        took = time.monotonic() - began
        for fact in outcome.facts:
            print(f"- {fact}")
        print(f"{harness.verdict(outcome.survived)} ({took:.0f} s)", flush=True)
        if outcome.survived and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept in {work}")
        if not outcome.survived:
            failed.append(name)
    print(f"\n{len(chosen) - len(failed)} of {len(chosen)} scenario(s) survived", flush=True)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--short", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--keep", action="store_true", help="keep every scenario's folder")
    args = parser.parse_args()
    return harness.run_main("faults", lambda: run(args), interrupted="all processes stopped")


if __name__ == "__main__":
    sys.exit(main())
