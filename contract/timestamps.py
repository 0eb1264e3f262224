"""Times as RFC 3339 text in UTC, ending in Z: the one formatter both sides use.

Part of the contract: the agent writes its health reports, audit entries, evidence
manifests and request statuses to the millisecond (`2026-11-27T12:00:00.000Z`), and the
registry reads them back. Other places write whole seconds (an owner's notification, the
registry's API answers), or milliseconds only when there are any (a request token's
claims); they name the precision they want instead of keeping a formatter of their own.
A missing time (None) stays None, so an optional field is written as JSON null."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, overload

# "auto": milliseconds when the moment has a fraction of a second, else whole seconds.
Precision = Literal["milliseconds", "seconds", "auto"]


@overload
def rfc3339(moment: datetime, precision: Precision = ...) -> str: ...
@overload
def rfc3339(moment: None, precision: Precision = ...) -> None: ...
@overload
def rfc3339(moment: datetime | None, precision: Precision = ...) -> str | None: ...
def rfc3339(moment: datetime | None, precision: Precision = "milliseconds") -> str | None:
    """`moment` in UTC with `Z`; a fraction beyond `precision` is cut, not rounded."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if precision == "auto":
        precision = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")


@overload
def rfc3339_epoch(epoch: float, precision: Precision = ...) -> str: ...
@overload
def rfc3339_epoch(epoch: None, precision: Precision = ...) -> None: ...
@overload
def rfc3339_epoch(epoch: float | None, precision: Precision = ...) -> str | None: ...
def rfc3339_epoch(epoch: float | None, precision: Precision = "milliseconds") -> str | None:
    """Seconds since the epoch (as the registry's database keeps times), as rfc3339()."""
    if epoch is None:
        return None
    return rfc3339(datetime.fromtimestamp(epoch, UTC), precision)
