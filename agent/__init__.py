"""Camera registry edge agent: watches cameras, reports health, hands footage only on request."""

from contract import __version__

__all__ = ["__version__"]
