"""Where a signed token (key set, withdrawal, preservation) goes after `sign`: standard
output, or a new file that is never written through a link or over an older token."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from contract.exit_codes import EX_CANTCREAT


def put_token(token: str, out: Path | None, err: TextIO, what: str) -> int | None:
    """Print `token`, or write it to `out`; None when done, else the exit code (73, said
    on `err`). `what` names it in the message ("Key set", "Withdrawal")."""
    if out is None:
        print(token)
        return None
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        print(f"camera-registry: cannot write {out}: {exc.strerror}", file=err)
        return EX_CANTCREAT
    with os.fdopen(fd, "w", encoding="ascii") as written:
        written.write(token + "\n")
    print(f"{what} written to {out}.", file=err)
    return None
