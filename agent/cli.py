"""The `camera-agent` command line (DESIGN.md: CLI contract).

Over 500 lines, not split in the issue 14 or 15 changes: one module per command group is
issue 17's (it also ends the lazy imports and the circular import with the setup wizard).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent import __version__
from agent.crypto import commands as key_commands
from agent.errors import AgentError, ConfigError
from agent.log import setup_logging
from agent.owner_page import commands as owner_commands
from agent.quality import commands as problems_commands
from agent.requests import commands as requests_commands

if TYPE_CHECKING:  # imported lazily below: `check` and `probe` start faster without them
    from agent.audit import AuditLog
    from agent.config import AgentConfig
    from agent.enrolment import Enrolment
    from agent.i18n import Translator
    from agent.recording.index import SegmentIndex

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/camera-agent/config.yaml")
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_IOERR = 74
EX_CONFIG = 78


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camera-agent",
        description="Watches CCTV cameras and reports their health to a police camera registry.",
    )
    parser.add_argument("--version", action="version", version=f"camera-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the agent (what the systemd service starts)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    check = commands.add_parser("check", help="validate a config file; exit 78 listing errors")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    probe = commands.add_parser("probe", help="one-off health check of a stream or video file")
    probe.add_argument("source", metavar="SOURCE", help="rtsp:// or http(s):// URL, or a file")
    probe.add_argument(
        "--seconds",
        type=_positive,
        default=10.0,
        metavar="N",
        help="how long to watch (stream time for files, which are read as fast as possible)",
    )
    probe.add_argument(
        "--interval",
        type=_positive,
        default=None,
        metavar="S",
        help="analyse one keyframe every S seconds, as the daemon does "
        "(default: every keyframe, at least one picture a second)",
    )
    probe.add_argument(
        "--reference",
        type=Path,
        metavar="IMAGE",
        help="an image of the view the camera should have; reports scene_changed if it moved",
    )
    probe.add_argument(
        "--fov",
        type=_fov,
        metavar="DEG",
        help="horizontal field of view: adds how far away the camera can identify a person",
    )
    probe.add_argument("--json", action="store_true", help="print one health object as JSON")

    reference = commands.add_parser("reference", help="the camera's reference view")
    reference_commands = reference.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = reference_commands.add_parser(
        "reset", help="accept the camera's current view as its reference (after moving it)"
    )
    reset.add_argument("camera", metavar="CAMERA")
    reset.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    setup = commands.add_parser(
        "setup", help="create the config file from answers to a few questions"
    )
    setup.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    setup.add_argument(
        "--language", choices=("nl", "en"), help="ask in Dutch or English (default: from LANG)"
    )
    setup.add_argument(
        "--probe-seconds",
        type=_positive,
        # Pictures a second are measured over at least 5 s of stream (half the rate window):
        # a shorter watch could not tell the owner the rate, nor that it is too low.
        default=7.0,
        metavar="N",
        help="how long to watch each camera URL as it is entered (default 7)",
    )

    requests_commands.add_parser(commands, DEFAULT_CONFIG)
    key_commands.add_parser(commands, DEFAULT_CONFIG)
    owner_commands.add_parser(commands, DEFAULT_CONFIG)
    problems_commands.add_parser(commands, DEFAULT_CONFIG)

    enroll = commands.add_parser(
        "enroll", help="join the registry with a one-time code from its operator"
    )
    enroll.add_argument(
        "--registry",
        required=True,
        metavar="URL",
        help="the registry's address, e.g. https://registry.example.org",
    )
    enroll.add_argument(
        "--code", required=True, metavar="CODE", help="the one-time code, e.g. 7KQ2-M9XD-4HRT-0WBE"
    )
    enroll.add_argument(
        "--ca-file",
        type=Path,
        metavar="PATH",
        help="the CA of the registry's HTTPS certificate, if it is not publicly trusted",
    )
    enroll.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    footage = commands.add_parser("footage", help="what footage is held, with gaps; export")
    footage.add_argument("--camera", metavar="ID", help="only this camera")
    footage.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    footage_commands = footage.add_subparsers(dest="action", metavar="ACTION")
    export = footage_commands.add_parser(
        "export", help="copy a window's original segments, checked, with a manifest"
    )
    export.add_argument("camera", metavar="CAMERA")
    export.add_argument("start", type=_moment, metavar="START", help="e.g. 2026-11-27T20:00:00Z")
    export.add_argument("end", type=_moment, metavar="END")
    export.add_argument("directory", type=Path, metavar="DIR", help="a new or empty folder")
    export.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    rebuild = footage_commands.add_parser(
        "rebuild",
        help="rebuild the footage index from the segment files (the agent must be stopped); "
        "the old index is kept aside",
    )
    rebuild.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    audit = commands.add_parser("audit", help="the hash-chained log of every footage request")
    audit_commands = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = audit_commands.add_parser("show", help="print the audit log in plain words")
    show.add_argument("--request", metavar="ID", help="only the entries of this request")
    show.add_argument("--json", action="store_true", help="print the entries as JSON lines")
    show.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    verify = audit_commands.add_parser(
        "verify", help="check every entry and link of the chain; exit 1 on any break"
    )
    verify.add_argument(
        "--head",
        type=_sha256,
        metavar="HASH",
        help="the newest entry's hash as the registry holds it: the log must contain it",
    )
    verify.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    return parser


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


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"not a SHA-256 hash (64 hex digits): {text!r}")
    return value


def _fov(text: str) -> float:
    value = _positive(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"must be below 180 degrees: {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "check":
        return _check(args.config)
    if args.command == "run":
        return _run(args.config)
    if args.command == "probe":
        return _probe(args)
    if args.command == "setup":
        from agent.setup_wizard import run as run_setup

        return run_setup(args)
    if args.command == "reference":
        return _reference_reset(args.config, args.camera)
    if args.command == "footage":
        if args.action == "export":
            return _footage_export(args)
        if args.action == "rebuild":
            return _footage_rebuild(args.config)
        return _footage_list(args.config, args.camera)
    if args.command == "audit":
        return _audit(args)
    if args.command == "enroll":
        return _enroll(args)
    if args.command == "owner-password":
        config = _load(args.config)
        return config if isinstance(config, int) else owner_commands.run(args, config)
    if args.command in ("requests", "keys", "problems"):
        config = _load(args.config)
        if isinstance(config, int):
            return config
        if args.command == "problems":
            return problems_commands.run(args, config)
        if args.command == "requests":
            return requests_commands.run(args, config)
        return key_commands.run(args, config)
    return EX_USAGE


def environment_locale() -> str:
    """The language of the environment (LC_ALL, LC_MESSAGES, LANG, in POSIX order): for
    commands that have no config to take `agent.locale` from, or cannot read it."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "nl" if value.lower().startswith("nl") else "en"
    return "en"


def owner_translator(config: AgentConfig | None = None) -> Translator:
    """The owner's language: `agent.locale` from the config, else the environment's."""
    from agent.i18n import translator

    return translator(config.agent.locale if config is not None else environment_locale())


def _load(path: Path) -> AgentConfig | int:
    from agent.config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG


def _check(path: Path) -> int:
    from agent.config import load_config

    try:
        config = load_config(path, check_folders=True)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    _ = owner_translator(config)
    count = len(config.cameras)
    said = _.ngettext(
        "{path}: valid ({count} camera, agent {agent})",
        "{path}: valid ({count} cameras, agent {agent})",
        count,
    )
    print(said.format(path=path, count=count, agent=config.agent.id))
    return 0


def _print_config_errors(path: Path, exc: ConfigError) -> None:
    # The config could not be read, so its locale is unknown: the environment's language.
    _ = owner_translator()
    count = len(exc.errors)
    said = _.ngettext("{path}: {count} error", "{path}: {count} errors", count)
    print(said.format(path=path, count=count), file=sys.stderr)
    for line in exc.errors:
        print(f"  {line}", file=sys.stderr)


def _enroll(args: argparse.Namespace) -> int:
    from agent import enrolment  # lazily: `probe` starts faster without pydantic

    try:
        view = enrolment.load_enrolment_view(args.config)
    except ConfigError as exc:
        _print_config_errors(args.config, exc)
        return EX_CONFIG
    from agent.i18n import translator

    _ = translator(view.agent.locale)
    try:
        result = enrolment.enrol(view, args.registry, args.code, ca_file=args.ca_file)
    except enrolment.EnrolmentError as exc:
        print(f"camera-agent enroll: {exc}", file=sys.stderr)
        return exc.exit_code
    return report_enrolment(result, view.agent.data_dir, args.config, _)


def report_enrolment(
    result: Enrolment, data_dir: Path, config_path: Path | None, _: Translator
) -> int:
    """Say what enrolment gave and save the broker password; `config_path` None: the caller
    (setup) writes the registry section itself."""
    from agent import enrolment

    print(
        _("enrolled as {agent}; device key {kid}").format(
            agent=result.agent_id, kid=result.key_thumbprint
        )
    )
    print(
        _("broker: {broker} (topic prefix {prefix})").format(
            broker=result.broker, prefix=result.topic_prefix
        )
    )
    lines = ["registry:", f"  broker: {result.broker}", f"  username: {result.username}"]
    if result.password is not None:
        try:
            saved = enrolment.save_password(data_dir, result.password)
        except OSError as exc:
            said = _(
                "enrolled, but cannot save the broker password: {error}; enrol again with a "
                "new code"
            )
            print("camera-agent enroll: " + said.format(error=exc), file=sys.stderr)
            return EX_CANTCREAT
        print(_("broker password saved in {path} (mode 0600)").format(path=saved))
        lines.append(f"  password_file: {saved}")
    else:
        print(
            _(
                "the registry issued no password: the broker knows this agent by its client "
                "certificate (CN = agent id); set client_cert and client_key"
            )
        )
    if result.topic_prefix != "camreg/v1":
        lines.append(f"  topic_prefix: {result.topic_prefix}")
    if config_path is not None:
        print()
        print(_("this config file was not changed; {path} should have:").format(path=config_path))
        print("\n".join(lines))
    return 0


def _run(path: Path) -> int:
    from agent.app import App, exit_past_stuck_threads, install_signal_handlers
    from agent.config import load_config
    from agent.state import StateError

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        code = App(config).run(stop)
    except StateError as exc:
        log.error("%s", exc)
        return EX_CANTCREAT
    except (AgentError, OSError) as exc:
        # What is left after the state files' own recovery (docs/service.md, "State
        # files"): a file that cannot be opened at all (permissions, a read-only or failed
        # disk). One line for the journal; systemd tries again in 5 s.
        log.error("cannot start: %s", exc)
        return EX_IOERR
    exit_past_stuck_threads(code)
    return code


def _probe(args: argparse.Namespace) -> int:
    from agent.errors import StreamError
    from agent.probe import describe, health_object, run_probe
    from agent.quality.reference import ReferenceImageError, from_image

    try:
        reference = from_image(args.reference) if args.reference else None
        health = run_probe(args.source, args.seconds, args.interval, reference)
    except (StreamError, ReferenceImageError) as exc:
        print(f"camera-agent probe: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.json:
        print(json.dumps(health_object(health, args.fov), indent=2))
    else:
        print(describe(args.source, health, args.fov))
    return 0


def _reference_reset(path: Path, camera: str) -> int:
    from agent.config import load_config
    from agent.control import tell_daemon
    from agent.quality.reference import ReferenceStore

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    _ = owner_translator(config)
    if config.camera(camera) is None:
        known = ", ".join(c.id for c in config.cameras)
        said = _("no camera '{camera}' in {path} (cameras: {known})")
        print(said.format(camera=camera, path=path, known=known), file=sys.stderr)
        return EX_USAGE

    def offline() -> int:
        if ReferenceStore(config.agent.data_dir).reset(camera):
            said = _(
                "camera {camera}: forgot its reference view; the agent takes a new one after "
                "a healthy warm-up"
            )
        else:
            said = _(
                "camera {camera}: had no reference view yet; the agent takes one after a "
                "healthy warm-up"
            )
        print(said.format(camera=camera))
        return 0

    return tell_daemon(
        config.agent.data_dir, {"command": "reference_reset", "camera": camera}, offline
    )


def _index(path: Path, cameras: Sequence[str] | None) -> tuple[AgentConfig, SegmentIndex] | int:
    """The config and the footage index, or an exit code after saying what is wrong.

    The folders of the directory-mode cameras among `cameras` (None: all) are scanned
    first, so the owner sees and exports what their recorder's folder holds now; a running
    daemon scans them too, and the index keeps the two from clashing."""
    from agent.config import DirectorySettings, load_config
    from agent.recording.directory import DirectoryScanner
    from agent.recording.index import FootageIndexError, SegmentIndex
    from agent.recording.storage import INDEX_FILE

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    folders = [
        (camera.id, camera.recording)
        for camera in config.cameras
        if isinstance(camera.recording, DirectorySettings)
        and (cameras is None or camera.id in cameras)
    ]
    index_path = config.agent.data_dir / INDEX_FILE
    if not index_path.exists() and not folders:
        from agent.recording.rebuild import has_footage

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
    from agent.evidence.export import rfc3339

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
    from agent.control import daemon_running
    from agent.recording.index import FootageIndexError, SegmentIndex
    from agent.recording.rebuild import rebuild
    from agent.recording.storage import INDEX_FILE
    from agent.requests.store import REQUESTS_FILE, RequestStore, RequestStoreError
    from agent.state_files import move_aside

    config = _load(path)
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
        done = rebuild(index, config.footage_dir, requests)
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


def _audit(args: argparse.Namespace) -> int:
    """`audit show` and `audit verify`: read-only, with or without a running daemon."""
    from agent.audit import AUDIT_FILE, AuditError, AuditLog
    from agent.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _print_config_errors(args.config, exc)
        return EX_CONFIG
    path = config.agent.data_dir / AUDIT_FILE
    try:
        audit = AuditLog(path)
        if args.action == "verify":
            return _audit_verify(audit, args.head, owner_translator(config))
        return _audit_show(audit, args.request, args.json, owner_translator(config))
    except AuditError as exc:
        hint = ""
        if isinstance(exc.__cause__, PermissionError):
            _ = owner_translator(config)
            hint = " " + _("(it belongs to the agent's service user: run this with sudo)")
        print(f"camera-agent: {exc}{hint}", file=sys.stderr)
        return EX_IOERR


def _audit_verify(audit: AuditLog, head: str | None, _: Translator) -> int:
    if not audit.path.exists() and head is None:
        print(_("no audit entries yet ({path} does not exist)").format(path=audit.path))
        return 0
    result = audit.verify(expected_head=head)
    for tear in result.recorded_tears:
        print(f"note: {tear}")
    if result.intact:
        if result.head is None:
            print(_("no audit entries yet ({path} is empty)").format(path=audit.path))
        else:
            said = _.ngettext(
                "audit log intact: {count} entry, head {head}",
                "audit log intact: {count} entries, head {head}",
                result.entries,
            )
            print(said.format(count=result.entries, head=result.head))
        return 0
    count = len(result.breaks)
    said = _.ngettext(
        "audit log BROKEN: {count} problem in {path}",
        "audit log BROKEN: {count} problems in {path}",
        count,
    )
    print(said.format(count=count, path=audit.path))
    # The problems name lines, hashes and fields: kept as they are, for whoever checks.
    for problem in result.breaks:
        print(f"  {problem}")
    if result.head is not None:
        print(_("last entry: {seq}, hash {head}").format(seq=result.head_seq, head=result.head))
    return 1


def _audit_show(audit: AuditLog, request: str | None, as_json: bool, _: Translator) -> int:
    from agent.audit import describe

    if not audit.path.exists():
        print(_("no audit entries yet"))
        return 0
    entries = audit.entries(request)
    if not entries:
        if request is None:
            print(_("no audit entries yet"))
        else:
            print(_("no audit entries for {request}").format(request=request))
    for entry in entries:
        if as_json:
            print(entry.line().decode("utf-8"))
            continue
        when = entry.time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        who = ""
        if entry.request_id:
            who = _("request {request}: ").format(request=entry.request_id)
        print(f"{when}  #{entry.seq}  {who}{describe(entry, _)}")
    result = audit.verify()
    if result.intact:
        return 0
    said = _("the audit log is broken, do not trust what it shows (camera-agent audit verify):")
    print("camera-agent: " + said, file=sys.stderr)
    for problem in result.breaks:
        print(f"  {problem}", file=sys.stderr)
    return 1
