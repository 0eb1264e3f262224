"""The setup wizard's old import path: it is the package `agent/setup/` now, one module per
job; these are the names this module had."""

from agent.setup.answers import Camera, PoliceTrust, Registry
from agent.setup.document import (
    CONFIG_MODE,
    PASSWORD_SUFFIX,
    SECRET_MODE,
    camera_password_path,
    config_document,
    police_key_path,
    write_config,
    write_secret,
)
from agent.setup.probe import PROBLEM_WORDS, stream_url
from agent.setup.prompts import Stopped, choose_language
from agent.setup.questions import Wizard
from agent.setup.wizard import (
    EX_OK,
    EX_STOPPED,
    INTERRUPTED,
    owner_page_setter,
    run,
)
from contract.exit_codes import EX_CANTCREAT, EX_CONFIG

__all__ = [
    "CONFIG_MODE",
    "EX_CANTCREAT",
    "EX_CONFIG",
    "EX_OK",
    "EX_STOPPED",
    "INTERRUPTED",
    "PASSWORD_SUFFIX",
    "PROBLEM_WORDS",
    "SECRET_MODE",
    "Camera",
    "PoliceTrust",
    "Registry",
    "Stopped",
    "Wizard",
    "camera_password_path",
    "choose_language",
    "config_document",
    "owner_page_setter",
    "police_key_path",
    "run",
    "stream_url",
    "write_config",
    "write_secret",
]
