"""The agent's exception hierarchy; library errors are translated where they enter."""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """Invalid configuration; `errors` lists each problem as `key.path: message (line N)`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class StreamError(AgentError):
    """A camera stream could not be opened or read."""


class UnreadableStream(StreamError):
    """Bytes arrive, but no stream in them before a deadline: garbage, not a camera
    that is merely off (that one ends in a socket timeout)."""


class LinkError(AgentError):
    """The registry link (MQTT) could not be set up."""
