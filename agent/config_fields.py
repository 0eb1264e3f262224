"""The old path of `contract.config.fields` (key and field parsing shared by the config's
sections), kept so that existing imports keep working."""

from contract.config.fields import (
    LOOPBACK_HOSTS,
    Bytes,
    ConfigPath,
    Loc,
    ReadableFile,
    Seconds,
    base_dir,
    check_readable,
    is_loopback,
    read_secret,
    resolve_path,
    rule_details,
    rule_error,
    web_url,
)

__all__ = [
    "LOOPBACK_HOSTS",
    "Bytes",
    "ConfigPath",
    "Loc",
    "ReadableFile",
    "Seconds",
    "base_dir",
    "check_readable",
    "is_loopback",
    "read_secret",
    "resolve_path",
    "rule_details",
    "rule_error",
    "web_url",
]
