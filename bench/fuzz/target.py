"""What a fuzz target is: a function of one input and the seeds it starts from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """`one_input(data)` returns when the parser gave a documented outcome (a result, or
    its own error type) and raises anything else: atheris records that input as a crash."""

    one_input: Callable[[bytes], None]
    seeds: list[bytes]


def split_once(data: bytes, separator: bytes = b"\n") -> tuple[bytes, bytes]:
    """Two fields of one input: before and after the first separator."""
    head, _, rest = data.partition(separator)
    return head, rest
