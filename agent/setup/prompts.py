"""Asking the owner, in their language: a question with its default, a password that is
not echoed, a yes or no; and the choice of that language, asked in both."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from agent.cli_common import environment_locale
from agent.i18n import Translator

_YES = ("y", "yes", "j", "ja")
_NO = ("n", "no", "nee")


class Stopped(Exception):
    """The owner ended the questions (end of input or Ctrl-C)."""


class Prompts:
    """Asking and saying; `ask` and `say` are input() and print() unless a test swaps them."""

    def __init__(
        self,
        _: Translator,
        ask: Callable[[str], str] = input,
        say: Callable[[str], None] = print,
    ) -> None:
        self._ = _
        self._ask = ask
        self.say = say

    def ask(self, question: str, default: str | None = None) -> str:
        prompt = f"{question} [{default}]: " if default else f"{question}: "
        try:
            answer = self._ask(prompt).strip()
        except EOFError:
            raise Stopped from None
        return answer or (default or "")

    def secret(self, question: str) -> str:
        """A password: not echoed at a terminal; read as a line from a pipe."""
        if sys.stdin.isatty():
            try:
                return getpass.getpass(f"{question}: ")
            except EOFError:
                raise Stopped from None
        return self.ask(question)

    def yes(self, question: str, default: bool) -> bool:
        _ = self._
        hint = _("Y/n") if default else _("y/N")
        while True:
            answer = self.ask(f"{question} ({hint})").lower()
            if not answer:
                return default
            if answer in _YES:
                return True
            if answer in _NO:
                return False
            self.say(_("Please answer y (yes) or n (no)."))


def choose_language(requested: str | None, ask: Callable[[str], str]) -> str:
    """--language, else asked (in both languages), with the environment's as the default."""
    if requested is not None:
        return requested
    default = environment_locale()
    while True:
        try:
            answer = ask(f"Taal / Language (nl/en) [{default}]: ").strip().lower()
        except EOFError:
            raise Stopped from None
        if not answer:
            return default
        if answer in ("nl", "en"):
            return answer
        if answer in ("nederlands", "dutch"):
            return "nl"
        if answer in ("engels", "english"):
            return "en"
