"""Errors a user can act on: one line saying what is wrong and what to do, never a stack trace."""


class CogoError(Exception):
    """A failure with a message meant for the person at the terminal or in the Dagster UI."""


class ConfigError(CogoError):
    """The environment or COGO_HOME is not usable as it stands."""


class ServiceUnavailable(CogoError):
    """A database or graph server cannot be reached or refuses us."""
