"""Hashing and export of footage run at disk speed, measured on real segment-sized files.

On the footage disk, write an hour of one camera's recording as segment files (60 s of
4 Mbit/s video each: 30 MB of random bytes, so nothing compresses or deduplicates), register
them in a real SegmentIndex as closed segments, then time with the page cache emptied
before every pass:

- raw read:       the files read in HASH_CHUNK pieces, nothing else (the disk's speed here),
- sha256_file:    agent.recording.index.sha256_file, what sealing and verifying a segment do,
- plain copy:     shutil.copyfile of every file into another folder on that disk, then fsync,
- export_window:  agent.evidence.export.export_window of the whole hour into such a folder
                  (copy each original while hashing it, check the hash, fsync, manifest).

MB/s is bytes of footage (10^6) per wall-clock second. Each pass runs --rounds times, in a
rotating order; the median counts. Also measured: SHA-256 of one core on a buffer in memory:
sha256_file reads, then hashes, so its bound is 1 / (1/read + 1/hash in memory).

    PYTHONPATH=. python3 bench/disk_speed.py [--dir DIR] [--total-mb 1800] [--rounds 3]

The page cache is dropped through /proc/sys/vm/drop_caches when that is writable (root);
otherwise every file is evicted with posix_fadvise(POSIX_FADV_DONTNEED) after an fsync,
which needs no privilege. fincore (util-linux), when present, confirms what stayed cached.
Exits 1 when a target is missed, 2 when the setup fails (no space, folder not writable).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from agent.config import DEFAULT_DATA_DIR
from agent.evidence.export import export_window
from agent.recording.index import HASH_CHUNK, SegmentIndex, sha256_file
from agent.recording.segments import segment_path
from bench import harness

CAMERA = "bench"
# One segment at the product defaults: 60 s of a 4 Mbit/s camera = 30 MB.
SEGMENT_S = 60
SEGMENT_MB = 4e6 / 8 * SEGMENT_S / 1e6
# An hour of one camera: enough that one pass takes seconds even on a fast disk.
DEFAULT_TOTAL_MB = 60 * SEGMENT_MB
DEFAULT_ROUNDS = 3
# Free space left over after the originals and one copy, so the machine is not filled up.
SPACE_MARGIN_BYTES = 512 * 10**6
# The in-memory hash rate is measured over this much data.
MEMORY_HASH_BYTES = 256 * 2**20
DROP_CACHES = Path("/proc/sys/vm/drop_caches")

# sha256_file reads a chunk, then hashes it: its bound is the time to read plus the time to
# hash in memory. Where the disk is slower than one core's SHA-256 (an SD card or a USB
# disk: 40-300 MB/s against about 1 GB/s), that bound is the disk's speed.
TARGET_HASH_RATIO = 0.8  # sha256_file / (read, then hash in memory)
TARGET_EXPORT_RATIO = 0.8  # export_window / plain copy


# --- the footage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Footage:
    root: Path  # everything the benchmark writes; removed at the end
    files: list[Path]
    index: SegmentIndex
    start: datetime
    end: datetime

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def default_parent() -> Path:
    """The nearest existing folder of the default footage folder: the disk footage goes to."""
    folder = DEFAULT_DATA_DIR / "footage"
    while not folder.exists():
        folder = folder.parent
    return folder


def write_footage(root: Path, count: int, segment_bytes: int) -> Footage:
    """`count` closed segments of random bytes, fsynced, in a real footage index."""
    index = SegmentIndex(root / "state" / "footage.sqlite")
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(seconds=count * SEGMENT_S)
    files = []
    for i in range(count):
        seg_start = start + timedelta(seconds=i * SEGMENT_S)
        path = segment_path(root / "footage", CAMERA, seg_start)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(segment_bytes)
        segment_id = index.begin(CAMERA, path, seg_start)
        with open(path, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        digest = hashlib.sha256(data).hexdigest()
        index.close(segment_id, seg_start + timedelta(seconds=SEGMENT_S), len(data), digest)
        files.append(path)
    return Footage(root, files, index, start, end)


# --- the page cache --------------------------------------------------------------------------


def can_drop_caches() -> bool:
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def evict(files: list[Path], drop_caches: bool) -> None:
    """Empty the page cache of these files (all of it, where allowed)."""
    os.sync()
    if drop_caches:
        DROP_CACHES.write_text("3\n")
        return
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            # Only clean pages are dropped: os.sync() above wrote every dirty one.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_bytes(files: list[Path]) -> int | None:
    """Bytes of these files in the page cache (fincore), None when it cannot be told."""
    fincore = shutil.which("fincore")
    if fincore is None:
        return None
    result = subprocess.run(
        [fincore, "--bytes", "--noheadings", "--raw", "--output", "RES", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return sum(int(line) for line in result.stdout.split())


# --- the passes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float  # user + system time of this process


def timed(work: Callable[[], object]) -> Timing:
    before_cpu = os.times()
    before = time.perf_counter()
    work()
    wall = time.perf_counter() - before
    after_cpu = os.times()
    cpu = (after_cpu.user - before_cpu.user) + (after_cpu.system - before_cpu.system)
    return Timing(wall, cpu)


def raw_read(files: list[Path]) -> None:
    for path in files:
        with open(path, "rb") as fh:
            while fh.read(HASH_CHUNK):
                pass


def hash_all(files: list[Path]) -> None:
    for path in files:
        sha256_file(path)


def plain_copy(files: list[Path], target: Path) -> None:
    target.mkdir()
    for path in files:
        copy = target / path.name
        shutil.copyfile(path, copy)
        with open(copy, "rb") as fh:
            os.fsync(fh.fileno())


def export_all(footage: Footage, target: Path) -> None:
    export_window(footage.index, harness.AGENT_ID, CAMERA, footage.start, footage.end, target)


def memory_hash_mbps() -> float:
    """SHA-256 of one core over a buffer in memory, in HASH_CHUNK pieces: the CPU's ceiling."""
    buffer = memoryview(os.urandom(MEMORY_HASH_BYTES))
    best = 0.0
    for _ in range(3):
        digest = hashlib.sha256()
        before = time.perf_counter()
        for offset in range(0, len(buffer), HASH_CHUNK):
            digest.update(buffer[offset : offset + HASH_CHUNK])
        best = max(best, len(buffer) / 1e6 / (time.perf_counter() - before))
    return best


@dataclass(frozen=True)
class PassResult:
    name: str
    what: str
    timings: list[Timing]
    total_bytes: int

    def mbps(self, timing: Timing) -> float:
        return self.total_bytes / 1e6 / timing.wall_s

    @property
    def median_mbps(self) -> float:
        return statistics.median(self.mbps(t) for t in self.timings)

    @property
    def range_text(self) -> str:
        speeds = sorted(self.mbps(t) for t in self.timings)
        return f"{speeds[0]:.0f}-{speeds[-1]:.0f}"

    @property
    def cpu_share(self) -> float:
        """Median share of one core the pass kept busy."""
        return statistics.median(t.cpu_s / t.wall_s for t in self.timings)


PASSES = {
    "raw read": f"read() in {HASH_CHUNK // 2**20} MiB chunks, nothing else",
    "sha256_file": "agent.recording.index.sha256_file",
    "plain copy": "shutil.copyfile + fsync, same disk",
    "export_window": "hash check, copy + hash, fsync, manifest",
}


def measure(footage: Footage, rounds: int, drop_caches: bool) -> tuple[dict[str, PassResult], int]:
    """Every pass `rounds` times, order rotating each round; returns the results and the
    most bytes of the originals found cached just before a pass (-1: not known)."""
    total = footage.bytes
    timings: dict[str, list[Timing]] = {name: [] for name in PASSES}
    work: dict[str, Callable[[Path], object]] = {
        "raw read": lambda _target: raw_read(footage.files),
        "sha256_file": lambda _target: hash_all(footage.files),
        "plain copy": lambda target: plain_copy(footage.files, target),
        "export_window": lambda target: export_all(footage, target),
    }
    names = list(PASSES)
    worst_cached = 0
    for round_no in range(rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            target = footage.root / "copy"
            evict(footage.files, drop_caches)
            cached = cached_bytes(footage.files)
            if cached is None:
                worst_cached = -1
            elif worst_cached >= 0:
                worst_cached = max(worst_cached, cached)
            timing = timed(functools.partial(work[name], target))
            timings[name].append(timing)
            print(
                f"  round {round_no + 1}: {name:<14} {total / 1e6 / timing.wall_s:7.0f} MB/s"
                f"  ({timing.wall_s:.2f} s, {100 * timing.cpu_s / timing.wall_s:.0f} % of a core)",
                flush=True,
            )
            if target.exists():
                shutil.rmtree(target)
    results = {name: PassResult(name, what, timings[name], total) for name, what in PASSES.items()}
    return results, worst_cached


# --- report ----------------------------------------------------------------------------------


def filesystem(path: Path) -> str:
    """'ext4 on /dev/vda (queue/rotational=0)': the type df reports, and the disk's flag."""
    result = subprocess.run(
        ["df", "--output=fstype,source", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.split("\n")
    if result.returncode != 0 or len(lines) < 2 or len(lines[1].split()) < 2:
        return "unknown filesystem"
    fstype, source = lines[1].split()[:2]
    kind = ""
    rotational = Path("/sys/block") / Path(source).name / "queue" / "rotational"
    with suppress(OSError):
        # Virtual disks often say 1 whatever backs them: shown as read, not interpreted.
        kind = f" (queue/rotational={rotational.read_text().strip()})"
    return f"{fstype} on {source}{kind}"


def report(
    out: IO[str],
    footage: Footage,
    results: dict[str, PassResult],
    memory_mbps: float,
    drop_caches: bool,
    worst_cached: int,
    rounds: int,
) -> bool:
    raw, hashed = results["raw read"], results["sha256_file"]
    copy, export = results["plain copy"], results["export_window"]
    hash_ratio = hashed.median_mbps / raw.median_mbps
    export_ratio = export.median_mbps / copy.median_mbps
    # Reading and hashing one after the other, with no overlap: what sha256_file can reach.
    serial = 1 / (1 / raw.median_mbps + 1 / memory_mbps)
    hash_ok = hashed.median_mbps / serial >= TARGET_HASH_RATIO
    export_ok = export_ratio >= TARGET_EXPORT_RATIO
    count = len(footage.files)
    cache = (
        "dropped before every pass (/proc/sys/vm/drop_caches)"
        if drop_caches
        else "each file evicted with posix_fadvise(DONTNEED) before every pass "
        "(/proc/sys/vm/drop_caches is not writable: not root)"
    )
    if worst_cached < 0:
        cached = "not checked (no fincore)"
    else:
        cached = f"at most {worst_cached / 1e6:.1f} MB of the originals cached before a pass"
    w = out.write
    w("\n")
    w(f"machine: {harness.machine(memory=True)}; {footage.root}: {filesystem(footage.root)}\n")
    w(
        f"footage: {count} segments of {footage.bytes / count / 1e6:.0f} MB "
        f"({footage.bytes / 1e6:.0f} MB, {count * SEGMENT_S / 60:g} min of a 4 Mbit/s camera)\n"
    )
    w(f"cache:   {cache}; {cached}\n")
    w(f"rounds:  {rounds}, median shown, range in brackets\n\n")
    w("| pass | what | MB/s | CPU, % of one core |\n")
    w("|---|---|---|---|\n")
    for result in results.values():
        w(
            f"| {result.name} | {result.what} | {result.median_mbps:.0f} "
            f"({result.range_text}) | {100 * result.cpu_share:.0f} |\n"
        )
    w(
        f"| SHA-256 in memory | hashlib, one core, {HASH_CHUNK // 2**20} MiB chunks | "
        f"{memory_mbps:.0f} | 100 |\n"
    )
    w("\n")
    w(
        f"sha256_file / (read, then hash in memory): {hashed.median_mbps / serial:.2f}   "
        f"target >= {TARGET_HASH_RATIO:g}: {harness.verdict(hash_ok)}\n"
    )
    w(
        f"  read {raw.median_mbps:.0f} MB/s, hash in memory {memory_mbps:.0f} MB/s, one after "
        f"the other {serial:.0f} MB/s; sha256_file {hashed.median_mbps:.0f} MB/s "
        f"({hash_ratio:.2f} of the raw read)\n"
    )
    w(
        f"export_window / plain copy: {export_ratio:.2f}   target >= {TARGET_EXPORT_RATIO:g}:"
        f" {harness.verdict(export_ok)}\n"
    )
    return hash_ok and export_ok


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    parent = args.dir or default_parent()
    segment_bytes = round(args.segment_mb * 1e6)
    count = max(1, round(args.total_mb / args.segment_mb))
    total = count * segment_bytes
    try:
        parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(parent).free
    except OSError as exc:
        raise harness.SetupError(f"{parent}: {exc}") from exc
    # The originals and one copy at a time, with room to spare.
    needed = 2 * total + SPACE_MARGIN_BYTES
    if free < needed:
        raise harness.SetupError(
            f"{parent} has {free / 1e9:.1f} GB free; {count} segments of {args.segment_mb:g} MB "
            f"and one copy need {needed / 1e9:.1f} GB (use --total-mb or --dir)"
        )
    try:
        root = Path(tempfile.mkdtemp(prefix="disk-speed-", dir=parent))
    except OSError as exc:
        raise harness.SetupError(f"cannot create a folder in {parent}: {exc}") from exc
    footage: Footage | None = None
    try:
        print(f"writing {count} segments of {args.segment_mb:g} MB to {root} ...", flush=True)
        try:
            footage = write_footage(root, count, segment_bytes)
        except OSError as exc:
            raise harness.SetupError(f"writing the footage in {root}: {exc}") from exc
        drop_caches = can_drop_caches()
        print("SHA-256 of one core in memory ...", flush=True)
        memory_mbps = memory_hash_mbps()
        print(f"measuring, {args.rounds} rounds ...", flush=True)
        results, worst_cached = measure(footage, args.rounds, drop_caches)
        ok = report(
            sys.stdout, footage, results, memory_mbps, drop_caches, worst_cached, args.rounds
        )
    finally:
        if footage is not None:
            footage.index.close_db()
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        help="where to write the footage, in a new temporary folder (default: the disk of "
        f"{DEFAULT_DATA_DIR / 'footage'})",
    )
    parser.add_argument(
        "--total-mb",
        type=float,
        default=DEFAULT_TOTAL_MB,
        help=f"footage to write, MB (default {DEFAULT_TOTAL_MB:g}: an hour of one camera)",
    )
    parser.add_argument(
        "--segment-mb",
        type=float,
        default=SEGMENT_MB,
        help=f"size of one segment file, MB (default {SEGMENT_MB:g}: 60 s at 4 Mbit/s)",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help=f"default {DEFAULT_ROUNDS}"
    )
    args = parser.parse_args()
    if args.total_mb <= 0 or args.segment_mb <= 0 or args.segment_mb > args.total_mb:
        parser.error("--total-mb and --segment-mb must be positive, a segment at most the total")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return harness.run_main("disk_speed", lambda: run(args), interrupted="its files were removed")


if __name__ == "__main__":
    sys.exit(main())
