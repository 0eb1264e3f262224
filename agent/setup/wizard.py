"""The order of `camera-agent setup`: the language, the questions, then what is written
(password files, enrolment, the police key, the config, its backup, the owner page's
password) and what the owner is told at the end; its exit codes."""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime

from agent.crypto.device_key import key_dir
from agent.enrolment import save_password
from agent.errors import AgentError
from agent.i18n import translator
from agent.owner_page.auth import set_owner_password
from agent.setup.document import (
    CONFIG_MODE,
    camera_password_path,
    config_document,
    police_key_path,
    write_config,
    write_secret,
)
from agent.setup.enrolment import join_registry
from agent.setup.prompts import Stopped, choose_language
from agent.setup.questions import Wizard
from contract.exit_codes import EX_CANTCREAT, EX_CONFIG

EX_OK = 0
EX_STOPPED = 1
INTERRUPTED = 130


def run(args: argparse.Namespace) -> int:
    try:
        locale = choose_language(args.language, input)
    except (Stopped, KeyboardInterrupt):
        return EX_STOPPED
    _ = translator(locale)
    # Looking for cameras on the network only where someone answers at a terminal (or
    # --discover says so): answers from a pipe were written for the questions without it.
    discover = args.discover if args.discover is not None else sys.stdin.isatty()
    wizard = Wizard(
        args.config,
        _,
        args.probe_seconds,
        discover_seconds=args.discover_seconds if discover else None,
    )
    try:
        return _questions(wizard, locale)
    except Stopped:
        print()
        print(_("Setup stopped; nothing was written."), file=sys.stderr)
        return EX_STOPPED
    except KeyboardInterrupt:
        print()
        print(_("Setup stopped; nothing was written."), file=sys.stderr)
        return INTERRUPTED


def _questions(wizard: Wizard, locale: str) -> int:
    _ = wizard._
    say = wizard.say
    path = wizard.config_path
    say(_("This sets up camera-agent; it writes {path}.").format(path=path))
    replacing = path.exists()
    if replacing:
        say(_("There is a config file already: {path}").format(path=path))
        if wizard.yes(_("Keep it?"), default=True):
            say(_("Kept; nothing was changed."))
            return EX_OK
    agent_id = wizard.agent_id()
    data_dir = wizard.data_dir()
    registry = wizard.registry()
    cameras = wizard.cameras()
    say("")
    max_bytes = wizard.footage_space()
    police = wizard.police(registry)
    say("")
    ntfy = wizard.notifications()
    page_password = wizard.owner_page_password()
    if page_password is not None:
        say(_("The owner page will be on: http://<this device's address>:8081/"))

    keys = key_dir(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for camera in cameras:
            if camera.password is not None:
                write_secret(camera_password_path(keys, camera.id), camera.password)
        if registry.enrol_url is not None:
            outcome = join_registry(wizard, registry, agent_id, data_dir, locale, cameras)
            if outcome is not None:
                return outcome
        elif registry.password is not None:
            registry.password_file = save_password(data_dir, registry.password)
    except OSError as exc:
        print(
            _("Cannot write in {path}: {error}").format(path=data_dir, error=exc), file=sys.stderr
        )
        return EX_CANTCREAT

    # The page is switched on when the owner gave it a password.
    page = page_password is not None
    pinned = None
    if police is not None:
        # A copy beside the config: the file the owner named may be gone tomorrow.
        key_file = police_key_path(path, police.kid)
        try:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_bytes(police.key)
            key_file.chmod(CONFIG_MODE)
        except OSError as exc:
            said = _("Cannot write {path}: {error}").format(path=key_file, error=exc)
            print(said, file=sys.stderr)
            return EX_CANTCREAT
        pinned = (key_file, police.upload_allow)
    document = config_document(
        agent_id, data_dir, locale, registry, cameras, max_bytes, page, pinned, ntfy
    )
    if replacing:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        # A copy: the old file stays in place until the new one has validated.
        shutil.copy2(path, backup)
        say(_("The old config file is kept as {path}.").format(path=backup))
    try:
        problems = write_config(path, document, _)
    except OSError as exc:
        print(_("Cannot write {path}: {error}").format(path=path, error=exc), file=sys.stderr)
        return EX_CANTCREAT
    if problems is not None:
        print(_("The answers do not make a valid config:"), file=sys.stderr)
        for line in problems.errors:
            print(f"  {line}", file=sys.stderr)
        return EX_CONFIG
    while page_password is not None:
        try:
            set_owner_password(data_dir, page_password)
        except AgentError as exc:
            say(str(exc))
            page_password = wizard.owner_page_password()
            continue
        say(_("The owner page password is set."))
        break
    say("")
    say(_("Written: {path}").format(path=path))
    if any(camera.password is not None for camera in cameras):
        say(_("Camera passwords are in {path} (readable by the agent only).").format(path=keys))
    say(_("Check it any time with: camera-agent check --config {path}").format(path=path))
    return EX_OK
