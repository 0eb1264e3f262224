"""Parse the durations (`90s`, `10m`, `7d`) and sizes (`50GB`, `1GiB`) owners write in configs.

Part of the contract: the agent's and the registry's configs and commands take the same
spellings."""

from __future__ import annotations

import math
import re
from decimal import Decimal

# ASCII digits only: `\d` would also accept Arabic-Indic and other Unicode digits.
_AMOUNT = re.compile(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([a-zA-Z]*)\s*")

_SECONDS_PER_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# Decimal SI units for kB/MB/GB/TB, binary (IEC) units for KiB/MiB/GiB/TiB. Matched
# case-insensitively, so `kb`, `KB` and `kB` all mean 1000 bytes.
_BYTES_PER_UNIT = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_DURATION_HINT = "use seconds or a number with s, m, h or d, e.g. 90s, 10m, 12h, 7d"
_SIZE_HINT = "use bytes or a number with kB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. 50GB"


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string such as `90s`, `10m`, `1.5h`, `7d` or `"30"`.

    Raises ValueError (only) for anything else, including negative and non-finite values.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a duration, not true/false; {_DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _AMOUNT.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _SECONDS_PER_UNIT:
            raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
        seconds = float(match.group(1)) * _SECONDS_PER_UNIT[unit]
    else:
        raise ValueError(f"must be a duration; {_DURATION_HINT}")
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds + 0.0  # turns `-0` into 0.0


def parse_size(value: object) -> int:
    """Bytes from a number of bytes or a string such as `500kB`, `2MB`, `50GB` or `1GiB`.

    Raises ValueError (only) for anything else, including negative and fractional byte counts.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a size, not true/false; {_SIZE_HINT}")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite size")
        amount = Decimal(value)
    elif isinstance(value, str):
        match = _AMOUNT.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _BYTES_PER_UNIT:
            raise ValueError(f"{value!r} is not a size; {_SIZE_HINT}")
        # Decimal keeps `1.1GB` exact where float arithmetic would give 1100000000.0000002.
        amount = Decimal(match.group(1)) * _BYTES_PER_UNIT[unit]
    else:
        raise ValueError(f"must be a size; {_SIZE_HINT}")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(amount)
