"""The exit codes of both command lines (`camera-agent`, `camera-registry`): BSD's
sysexits, which systemd, shells and scripts read (DESIGN.md's CLI contract; docs/service.md
lists what each means for the agent). Python's `os` module has them on Unix; they are
named here once so every command takes them from one place and none defines its own."""

import os

EX_USAGE = os.EX_USAGE  # 64: the command was used wrongly
EX_DATAERR = os.EX_DATAERR  # 65: the input data was wrong
EX_NOINPUT = os.EX_NOINPUT  # 66: an input file is missing or unreadable
EX_UNAVAILABLE = (
    os.EX_UNAVAILABLE
)  # 69: a service (the daemon, the registry, a camera) is not there
EX_SOFTWARE = os.EX_SOFTWARE  # 70: an internal error
EX_CANTCREAT = os.EX_CANTCREAT  # 73: an output file cannot be created
EX_IOERR = os.EX_IOERR  # 74: reading or writing failed
EX_PROTOCOL = os.EX_PROTOCOL  # 76: the other side answered outside the protocol
EX_NOPERM = os.EX_NOPERM  # 77: not allowed
EX_CONFIG = os.EX_CONFIG  # 78: the configuration is invalid
