"""The registry's errors: each message says what was wrong in words an operator can act on."""


class RegistryError(Exception):
    """Configuration, database or input problem the registry cannot go on with."""
