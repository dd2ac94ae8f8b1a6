"""The project's own errors. Each one ends a run with one line on stderr and exit 2."""


class PmuError(Exception):
    """Base: nothing could be reviewed. The message is one line meant for the user."""

    exit_code = 2


class InputError(PmuError):
    """The input is unreadable, not a mail, or holds no patch."""


class FetchError(PmuError):
    """b4 failed, is missing, timed out, or the message was not found."""


class UsageError(PmuError):
    """Options that contradict each other or name things that do not exist."""


class RuleLoadError(PmuError):
    """A rule file or plugin is malformed (reported per rule by `rules list`)."""
