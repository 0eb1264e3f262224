"""`python -m bench.fuzz TARGET... | all [--runs N]`: run fuzz targets one after another,
each in its own process, and print executions, time, exec/s, coverage and crashes.

Exits 1 when a target crashed or hung (the input is kept in --out), 2 when one could not
run at all. bench/README.md has the latest numbers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import machine

TARGETS = ("token", "ingest", "config", "tus", "directory")
DEFAULT_RUNS = 1_000_000
# A parser of one small input that takes this long is hung (libFuzzer -timeout).
DEFAULT_TIMEOUT_S = 10
# libFuzzer's default cap on an input's length is 4096 bytes when the seeds are smaller;
# the token limit is 16 KiB, so inputs may exceed it.
MAX_LEN = 20_000
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    target: str
    executions: int
    seconds: float
    edges: int
    features: int
    corpus: int
    peak_rss_mb: int
    crashes: list[Path]
    exit_code: int
    log: Path

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def _stat(log: str, name: str) -> int:
    found = re.findall(rf"stat::{name}:\s*(\d+)", log)
    return int(found[-1]) if found else 0


def _last_status(log: str, field: str) -> int:
    found = re.findall(rf"^#\d+\s+\w+\s.*?\b{field}: (\d+)", log, re.MULTILINE)
    return int(found[-1]) if found else 0


def run_target(
    name: str, runs: int, timeout_s: int, out: Path, seed: int, max_seconds: int = 0
) -> Outcome:
    """One target for `runs` executions (or `max_seconds`, if not 0) in a child process;
    its log and any crashing input are kept under `out/name`."""
    where = out / name
    shutil.rmtree(where, ignore_errors=True)
    corpus = where / "corpus"
    corpus.mkdir(parents=True)
    log_path = where / "libfuzzer.log"
    command = [
        sys.executable,
        "-m",
        "bench.fuzz.child",
        name,
        str(corpus),
        f"-runs={runs}",
        f"-timeout={timeout_s}",
        f"-max_len={getattr(importlib.import_module(f'bench.fuzz.{name}'), 'MAX_LEN', MAX_LEN)}",
        f"-seed={seed}",
        f"-max_total_time={max_seconds}",
        f"-artifact_prefix={where}/",
        "-print_final_stats=1",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        code = subprocess.run(
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False
        ).returncode
    seconds = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    crashes = sorted(p for p in where.iterdir() if p.name.startswith(ARTIFACTS))
    return Outcome(
        target=name,
        executions=_stat(log, "number_of_executed_units"),
        seconds=seconds,
        edges=_last_status(log, "cov"),
        features=_last_status(log, "ft"),
        corpus=_last_status(log, "corp"),
        peak_rss_mb=_stat(log, "peak_rss_mb"),
        crashes=crashes,
        exit_code=code,
        log=log_path,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("targets", nargs="+", choices=[*TARGETS, "all"], metavar="TARGET")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="executions per target")
    parser.add_argument(
        "--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds one input may take"
    )
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's seed (0: random)")
    parser.add_argument(
        "--max-seconds", type=int, default=0, help="stop a target after this long (0: no limit)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "camreg-fuzz",
        help="logs, corpora and crashing inputs (default: $TMPDIR/camreg-fuzz)",
    )
    args = parser.parse_args(argv)
    names = TARGETS if "all" in args.targets else tuple(dict.fromkeys(args.targets))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(
        f"{'target':<10} {'executions':>11} {'seconds':>8} {'exec/s':>8} {'edges':>6} "
        f"{'features':>8} {'corpus':>6} {'rss MB':>6} {'crashes':>7}",
        flush=True,
    )
    failed = broken = False
    for name in names:
        outcome = run_target(name, args.runs, args.timeout, args.out, args.seed, args.max_seconds)
        print(
            f"{name:<10} {outcome.executions:>11,} {outcome.seconds:>8.1f} "
            f"{outcome.rate:>8,.0f} {outcome.edges:>6} {outcome.features:>8} "
            f"{outcome.corpus:>6} {outcome.peak_rss_mb:>6} {len(outcome.crashes):>7}",
            flush=True,
        )
        if outcome.crashes:
            failed = True
            for path in outcome.crashes:
                print(f"  {path.name.split('-')[0]}: {path}  (log: {outcome.log})", flush=True)
        elif outcome.exit_code != 0:
            broken = True
            print(f"  did not finish (exit {outcome.exit_code}); log: {outcome.log}", flush=True)
        elif outcome.executions < args.runs:
            print(f"  stopped by --max-seconds after {outcome.executions:,} runs", flush=True)
    return 1 if failed else 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
