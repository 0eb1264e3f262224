"""Logging set-up: plain lines; journald adds timestamps when run as a service.

Shared: the agent's and the registry's daemons log alike."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbose: bool = False) -> None:
    under_journald = "JOURNAL_STREAM" in os.environ
    fmt = "%(levelname)s %(threadName)s %(name)s: %(message)s"
    if not under_journald:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr
    )
    # paho and PyAV are chatty at debug level; their problems reach us as exceptions.
    logging.getLogger("paho").setLevel(logging.WARNING)
    logging.getLogger("libav").setLevel(logging.ERROR)
