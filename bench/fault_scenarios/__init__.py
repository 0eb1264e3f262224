"""The scenarios of `bench/faults.py`, one module per fault (issue 15).

Each module defines:

- `NAME`: a short name for `--only` (e.g. `disk_full`);
- `WHAT`: one line saying what is done to the agent;
- `run(work: Path, *, short: bool) -> Outcome`: runs the scenario end to end with real
  parts (mosquitto, RTSP cameras, the agent as a process) inside the folder `work`, at
  full length, or in a few seconds when `short` (what a CI test would run), and returns
  what survived. It raises `bench.harness.SetupError` when the machine cannot run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What a scenario measured: whether the product survived and the numbers saying so."""

    survived: bool
    # One line per measured fact, e.g. "health reports during the full disk: 42 (0 lost)".
    facts: list[str] = field(default_factory=list)
