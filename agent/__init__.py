"""Camera registry edge agent: watches cameras, reports health, hands footage only on request."""

__version__ = "0.1.0"
