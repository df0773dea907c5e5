"""The ``pydiff`` group, and errors as one line on stderr with an exit status."""

from __future__ import annotations

import functools
import sys

import click

from ..errors import PydiffError
from ..version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int) -> None:
    click.echo(f"pydiff: error: {message}", err=True)
    sys.exit(code)


# What continues an interrupted command (reports_errors' ``continued``): generate and train
# take --resume (the library's own hints, which name the file or checkpoint, stand); a pipeline
# (reproduce, study, compare, trust) continues when it is run again, and has no --resume.
RESUME = "run the same command with --resume to continue"
AGAIN = "run the same command again to continue"


def reports_errors(data_error_code: int | None = None, continued: str | None = None):
    """Turn :class:`PydiffError` into one line on stderr and its exit status, and so an
    :class:`OSError` that names a file (an output that cannot be written: a full disk, a directory
    made read-only meanwhile; status 1).

    ``data_error_code`` overrides the status of data-file errors for commands that take a data
    file as an argument (there a bad file is a usage error, status 2).  ``continued``: what
    continues the command after an interruption (:data:`RESUME`, :data:`AGAIN`; None: nothing,
    it starts over), said in place of the library's hint where it is not --resume.
    """

    def wrap(command):
        @functools.wraps(command)
        def run(*args, **kwargs):
            from ..errors import DataFileError, Interrupted

            try:
                return command(*args, **kwargs)
            except PydiffError as exc:
                code = exc.exit_code
                if data_error_code is not None and isinstance(exc, DataFileError):
                    code = data_error_code
                if isinstance(exc, Interrupted) and continued not in (None, RESUME):
                    exc = exc.continued_by(continued)
                _fail(str(exc), code)
            except OSError as exc:
                if exc.filename is None:  # not about a file of the user's: a bug, with its traceback
                    raise
                _fail(f"{exc.filename}: {exc.strerror or exc}", 1)
            except KeyboardInterrupt:
                _fail(f"interrupted; {continued}" if continued else "interrupted", 130)

        return run

    return wrap


class OneLineErrors(click.Group):
    """Click's own usage errors (a malformed number, a missing option) as one line, status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except no_args_help as exc:
            click.echo(exc.ctx.get_help())
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)


@click.group(cls=OneLineErrors, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="pydiff")
def main() -> None:
    """Deep learning surrogate of the stationary diffusion equation (Toledo-Marin et al., 2021).

    \b
    Typical session:
      pydiff generate --n 20000 --out data/two_sources.h5 --seed 0
      pydiff info data/two_sources.h5
      pydiff reproduce --model 9
    """
