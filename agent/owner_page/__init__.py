"""The owner's local page: cameras, snapshots, footage, requests to decide and the audit log,
served by the agent itself on the local network (off by default; docs/owner-page.md)."""

from __future__ import annotations

from pathlib import Path

PASSWORD_FILE = "owner-password"


def set_owner_password(data_dir: Path, password: str) -> Path:
    """Store the owner page's password (Argon2id hash) in `data_dir`; returns the file.

    Raises agent.owner_page.auth.OwnerPasswordError for a too short or too long password,
    or a file that cannot be written. (For `camera-agent setup` and the installer; the web
    stack is imported only when called.)"""
    from agent.owner_page import auth

    return auth.set_owner_password(data_dir, password)
