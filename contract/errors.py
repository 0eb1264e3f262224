"""The errors the shared code raises on purpose. Both the agent and the registry depend on
this module: one config error, one wording of its problems, on both sides."""


class ConfigError(Exception):
    """Invalid configuration; `errors` lists each problem as `key.path: message (line N)`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
