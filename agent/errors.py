"""The agent's exception hierarchy; library errors are translated where they enter.

The config error is the shared contract's (`contract.errors.ConfigError`): the registry's
config reports its problems the same way."""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class StreamError(AgentError):
    """A camera stream could not be opened or read."""


class UnreadableStream(StreamError):
    """Bytes arrive, but no stream in them before a deadline: garbage, not a camera
    that is merely off (that one ends in a socket timeout)."""


class LinkError(AgentError):
    """The registry link (MQTT) could not be set up."""


class OnvifError(AgentError):
    """An ONVIF device could not be reached or answered outside the protocol."""


class OnvifBadAnswer(OnvifError):
    """An ONVIF device answered, but not with what was asked: no valid value, a SOAP fault,
    a reply past the size cap, or not ONVIF at all."""


class OnvifNotAuthorized(OnvifError):
    """An ONVIF device refused the user name and password (or needs some and got none)."""
