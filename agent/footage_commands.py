"""`camera-agent footage [export | rebuild]`: what footage is held, with its gaps; a
window's original segments copied out, checked, with a signed manifest; the footage index
rebuilt from the segment files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli_common import load, owner_translator
from agent.control import daemon_running
from agent.recording.index import FootageIndexError, SegmentIndex
from agent.state_files import move_aside
from contract.exit_codes import EX_CANTCREAT, EX_IOERR, EX_UNAVAILABLE, EX_USAGE
from contract.timestamps import rfc3339

if TYPE_CHECKING:  # imported lazily below (agent/cli.py says why)
    from agent.config import AgentConfig


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    footage = commands.add_parser("footage", help="what footage is held, with gaps; export")
    footage.add_argument("--camera", metavar="ID", help="only this camera")
    footage.add_argument("--config", type=Path, default=config, metavar="PATH")
    footage.set_defaults(func=_footage)
    footage_commands = footage.add_subparsers(dest="action", metavar="ACTION")
    export = footage_commands.add_parser(
        "export", help="copy a window's original segments, checked, with a manifest"
    )
    export.add_argument("camera", metavar="CAMERA")
    export.add_argument("start", type=_moment, metavar="START", help="e.g. 2026-11-27T20:00:00Z")
    export.add_argument("end", type=_moment, metavar="END")
    export.add_argument("directory", type=Path, metavar="DIR", help="a new or empty folder")
    export.add_argument("--config", type=Path, default=config, metavar="PATH")
    rebuild = footage_commands.add_parser(
        "rebuild",
        help="rebuild the footage index from the segment files (the agent must be stopped); "
        "the old index is kept aside",
    )
    rebuild.add_argument("--config", type=Path, default=config, metavar="PATH")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use RFC 3339, e.g. 2026-11-27T20:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {text}Z for UTC")
    return moment.astimezone(UTC)


def _footage(args: argparse.Namespace) -> int:
    if args.action == "export":
        return _footage_export(args)
    if args.action == "rebuild":
        return _footage_rebuild(args.config)
    return _footage_list(args.config, args.camera)


def _index(path: Path, cameras: Sequence[str] | None) -> tuple[AgentConfig, SegmentIndex] | int:
    """The config and the footage index, or an exit code after saying what is wrong.

    The folders of the directory-mode cameras among `cameras` (None: all) are scanned
    first, so the owner sees and exports what their recorder's folder holds now; a running
    daemon scans them too, and the index keeps the two from clashing."""
    # Lazily (agent/cli.py says why): pydantic, PyAV and OpenCV.
    from agent.config import DirectorySettings
    from agent.recording.directory import DirectoryScanner
    from agent.recording.rebuild import has_footage
    from agent.recording.storage import INDEX_FILE

    config = load(path)
    if isinstance(config, int):
        return config
    folders = [
        (camera.id, camera.recording)
        for camera in config.cameras
        if isinstance(camera.recording, DirectorySettings)
        and (cameras is None or camera.id in cameras)
    ]
    index_path = config.agent.data_dir / INDEX_FILE
    if not index_path.exists() and not folders:
        _ = owner_translator(config)
        if has_footage(config.footage_dir):
            said = _(
                "the footage index {path} is missing, but {folder} holds footage: the agent "
                "rebuilds the index when it starts, or run camera-agent footage rebuild"
            )
            print(said.format(path=index_path, folder=config.footage_dir), file=sys.stderr)
            return EX_UNAVAILABLE
        print(_("no footage recorded yet (no index at {path})").format(path=index_path))
        return 0
    try:
        index = SegmentIndex(index_path)
        for camera_id, settings in folders:
            DirectoryScanner(camera_id, settings, index).scan()
    except FootageIndexError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    return config, index


def _footage_list(path: Path, only: str | None) -> int:
    opened = _index(path, None if only is None else [only])
    if isinstance(opened, int):
        return opened
    config, index = opened
    _ = owner_translator(config)
    cameras = [c for c in config.cameras if only in (None, c.id)]
    if not cameras:
        print(_("no camera '{camera}' in {path}").format(camera=only, path=path), file=sys.stderr)
        return EX_USAGE
    for config_camera in cameras:
        camera = config_camera.id
        summary = index.summary(camera)
        if summary.oldest is None or summary.newest is None:
            print(_("{camera}: no footage").format(camera=camera))
            continue
        count = sum(1 for s in index.segments(camera) if s.state in ("closed", "partial"))
        rebuilt = index.rebuilt_count(camera)
        # The owner knows their recorder's pieces as files, the agent's own as segments.
        if config_camera.recording.mode == "directory":
            pieces = _.ngettext("{count} file", "{count} files", count)
        else:
            pieces = _.ngettext("{count} segment", "{count} segments", count)
        gaps = _.ngettext(
            "{count} gap ({seconds} s)", "{count} gaps ({seconds} s)", summary.gap_count
        ).format(count=summary.gap_count, seconds=f"{summary.gap_seconds:.0f}")
        said = _("{camera}: {oldest} to {newest}, {pieces}, {megabytes} MB, {gaps}")
        print(
            said.format(
                camera=camera,
                oldest=rfc3339(summary.oldest),
                newest=rfc3339(summary.newest),
                pieces=pieces.format(count=count),
                megabytes=f"{summary.bytes / 1e6:.1f}",
                gaps=gaps,
            )
        )
        if rebuilt:
            said = _.ngettext(
                "  {count} segment indexed by a rebuild: hashed when the index was rebuilt, "
                "not when it was recorded",
                "  {count} segments indexed by a rebuild: hashed when the index was rebuilt, "
                "not when they were recorded",
                rebuilt,
            )
            print(said.format(count=rebuilt))
        for gap in index.gaps(camera, summary.oldest, summary.newest):
            said = _("  gap {start} to {end} ({reason})")
            print(said.format(start=rfc3339(gap.start), end=rfc3339(gap.end), reason=gap.reason))
    return 0


def _footage_rebuild(path: Path) -> int:
    """`footage rebuild`: keep the index aside and index the segment files again."""
    # Lazily (agent/cli.py says why): PyAV, OpenCV, cryptography.
    from agent.police_requests.holds import holds_to_keep
    from agent.police_requests.store import REQUESTS_FILE, RequestStore, RequestStoreError
    from agent.recording.rebuild import rebuild
    from agent.recording.storage import INDEX_FILE

    config = load(path)
    if isinstance(config, int):
        return config
    _ = owner_translator(config)
    data_dir = config.agent.data_dir
    if daemon_running(data_dir):
        said = _("the agent is running: stop it first (systemctl stop camera-agent)")
        print("camera-agent: " + said, file=sys.stderr)
        return EX_UNAVAILABLE
    index_path = data_dir / INDEX_FILE
    try:
        if index_path.exists():
            kept = move_aside(index_path, "rebuilt by the owner").kept_as
            print(_("the old index is kept as {name}").format(name=kept))
        index = SegmentIndex(index_path)
        requests = []
        if (data_dir / REQUESTS_FILE).exists():
            store = RequestStore(data_dir / REQUESTS_FILE)
            requests = store.all()
            store.close()
        done = rebuild(index, config.footage_dir, holds_to_keep(requests))
        index.close_db()
    except (FootageIndexError, RequestStoreError, OSError) as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_IOERR
    said = _(
        "footage index rebuilt: {count} segments, {megabytes} MB, each hashed again; "
        "{holds} holds of accepted requests, {gaps} gaps, {skipped} files skipped"
    )
    print(
        said.format(
            count=done.segments,
            megabytes=f"{done.bytes / 1e6:.1f}",
            holds=done.holds,
            gaps=done.gaps,
            skipped=done.skipped,
        )
    )
    return 0


def _footage_export(args: argparse.Namespace) -> int:
    # Lazily (agent/cli.py says why): cryptography.
    from agent.crypto import device_key
    from agent.evidence.export import ExportError, export_window

    opened = _index(args.config, [args.camera])
    if isinstance(opened, int):
        return opened if opened else EX_UNAVAILABLE
    config, index = opened
    _ = owner_translator(config)
    if config.camera(args.camera) is None:
        said = _("no camera '{camera}' in {path}")
        print(said.format(camera=args.camera, path=args.config), file=sys.stderr)
        return EX_USAGE

    def progress(done: int, total: int) -> None:
        said = _("{percent} % of {megabytes} MB").format(
            percent=f"{100 * done // max(total, 1):3d}", megabytes=f"{total / 1e6:.1f}"
        )
        print("\r" + said, end="", flush=True)

    try:
        key = device_key.load_or_create(config.agent.data_dir)
    except device_key.DeviceKeyError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    try:
        manifest = export_window(
            index,
            config.agent.id,
            args.camera,
            args.start,
            args.end,
            args.directory,
            key=key,
            progress=progress,
        )
    except ExportError as exc:
        said = _("export failed ({reason}): {error}").format(reason=exc.reason, error=exc)
        print("\ncamera-agent: " + said, file=sys.stderr)
        return EX_UNAVAILABLE
    kid = device_key.describe(key)["kid"]
    said = _("exported to {directory}; hashes in {manifest}, signed by device key {kid}")
    print("\n" + said.format(directory=args.directory, manifest=manifest, kid=kid))
    return 0
