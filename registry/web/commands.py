"""`camera-registry serve`, `check`, `users` and `tokens`: the server and who may use it."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from registry.config import DEFAULT_CONFIG, load_server_config
from registry.db.engine import open_engine
from registry.errors import RegistryError
from registry.web import auth
from registry.web.auth import Role


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `serve`, `check`, `users` and `tokens` to the `camera-registry` parser."""
    serve = commands.add_parser("serve", help="run the registry: web pages, API, intake, ingest")
    serve.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    serve.add_argument(
        "--no-ingest",
        action="store_true",
        help="do not ingest MQTT in this process (separate `camera-registry ingest` workers do)",
    )
    serve.set_defaults(func=_serve)

    check = commands.add_parser("check", help="validate the registry config; exit 78 on errors")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    check.set_defaults(func=_check)

    users = commands.add_parser("users", help="who may log in").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create a user, or reset their password and role")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read the password (else: prompt)"
    )
    add.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    add.set_defaults(func=_users_add)
    listing = users.add_parser("list", help="users, roles and lock-outs")
    listing.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    listing.set_defaults(func=_users_list)

    tokens = commands.add_parser("tokens", help="API tokens for scripts").add_subparsers(
        dest="tokens_command", required=True, metavar="ACTION"
    )
    token = tokens.add_parser("add", help="a new API token for a user (shown once)")
    token.add_argument("name")
    token.add_argument("--label", required=True, help="what the token is for")
    token.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    token.set_defaults(func=_tokens_add)


def _check(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    print(
        f"{args.config}: valid (database {config.database_url.split('://', 1)[0]}, "
        f"listening on {config.http.listen})"
    )
    return 0


def _read_password(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read: {exc.strerror}") from exc
    if not sys.stdin.isatty():
        raise RegistryError("no terminal to ask for the password: use --password-file")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise RegistryError("the two passwords differ")
    return first


def _users_add(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    password = _read_password(args.password_file)
    auth.add_user(open_engine(config.database_url), args.name, password, Role(args.role))
    print(f"user {args.name} ({args.role}) saved")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    now = datetime.now(UTC).timestamp()
    for user, locked_until in auth.list_users(open_engine(config.database_url)):
        locked = ""
        if locked_until is not None and locked_until > now:
            locked = f"  locked until {datetime.fromtimestamp(locked_until, UTC):%H:%M:%S} UTC"
        print(f"{user.name}\t{user.role}{locked}")
    return 0


def _tokens_add(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    token = auth.add_api_token(open_engine(config.database_url), args.name, args.label)
    print(token)
    print(f"API token for {args.name} ({args.label}); it is shown only now.", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from registry.server import run_server  # the web stack loads only for `serve`

    return run_server(load_server_config(args.config), ingest=not args.no_ingest)
