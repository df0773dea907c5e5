"""The exceptions pydiff raises on purpose.

Every error a user can cause is a :class:`PydiffError`; the command line prints its message on
one line and exits with its ``exit_code``, never with a traceback.  Anything else is a bug.
"""

from __future__ import annotations


class PydiffError(Exception):
    """Base class: an error with a message meant for the user."""

    exit_code = 1


class ConfigError(PydiffError, ValueError):
    """Impossible parameters or arguments (a usage error: exit status 2)."""

    exit_code = 2


class DataFileError(PydiffError):
    """A data set or checkpoint that is missing, truncated, foreign or of another version."""

    exit_code = 1


class NotConverged(ConfigError):
    """An iterative solver that did not reach its tolerance: a caller that needs the answer
    falls back to a direct one (:func:`pydiff.solvers.fastest.exact_fields`)."""


class BackendUnavailable(PydiffError):
    """A solver backend that cannot run here (for example Julia is not installed)."""

    exit_code = 2


class Interrupted(PydiffError):
    """A long job stopped by a signal after saving what it needs to resume (status 128 + signal).

    ``message`` says where it stopped and what it kept; ``hint`` how to continue, in the words of
    the command that runs the job itself (generate's and train's ``--resume``).  A command that
    continues otherwise (a pipeline: the same command again) says so instead: :meth:`continued_by`.
    """

    def __init__(self, message: str, exit_code: int = 130, hint: str = "") -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message, self.hint, self.exit_code = message, hint, exit_code

    def continued_by(self, hint: str) -> "Interrupted":
        """The same interruption, continued by ``hint``."""
        return Interrupted(self.message, self.exit_code, hint)
