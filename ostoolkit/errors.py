"""The project's own exception types; ``cli.py`` turns them into exit codes in one place."""


class OstoolkitError(Exception):
    """A measurement could not be done; the message says what failed, why and what to do."""


class UnsupportedPlatform(OstoolkitError):
    """The host is not one ostoolkit can measure (it needs Linux)."""


class InvalidRequest(OstoolkitError):
    """The user asked for something that cannot be done as asked (exit status 2)."""


class LimitExceeded(InvalidRequest):
    """A request would exceed a process, thread or memory limit; refused before forking."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that cleanup runs as it does for Ctrl-C."""
