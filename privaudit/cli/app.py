"""The ``privaudit`` command: one click app, commands in sibling modules.

Exit codes, for every command: 0 done; 1 the check found what it looks for (``check
--fail-on-violation``, ``schemas check`` on an incompatible schema, a demo whose store does not
match ``check``); 2 usage or input errors (a bad policy file, a missing file) and dependencies that
could not be reached, printed as one line; 70 (``EX_SOFTWARE``) a bug: an exception privaudit did
not expect, with its traceback, never 1, which scripts read as "violations found".
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from privaudit import __version__
from privaudit.errors import PrivauditError, excerpt
from privaudit.settings import ENV_LOG_LEVEL, configure_logging

from .terminal import UserError

#: The exit status of an exception privaudit did not expect (sysexits.h's EX_SOFTWARE).
EXIT_BUG = 70


class App(click.Group):
    """Translates privaudit's own errors into one line and exit 2, once, for every command, and
    any other exception into its traceback and exit 70."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrivauditError as exc:
            raise UserError(str(exc)) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            click.echo(f"privaudit: internal error: {type(exc).__name__}: {excerpt(str(exc), 300, quoted=False)} "
                       "(a bug: please report it with the traceback above)", err=True)
            raise SystemExit(EXIT_BUG) from exc


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="privaudit")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="WARNING", show_default=True, envvar=ENV_LOG_LEVEL, show_envvar=True,
              help="What privaudit logs on stderr (INFO: assignments, replays, retries).")
def cli(log_level: str) -> None:
    """Audit how personal data is processed, event by event, against the privacy policy.

    Environment: NO_COLOR turns colours off.
    """
    configure_logging(log_level)


def _register() -> None:
    from . import (
        alerts_cmd,
        check,
        dashboard_cmd,
        demo_cmd,
        pipeline_cmd,
        policy_cmd,
        report_cmd,
        schemas_cmd,
        sql_cmd,
        subject_cmd,
        verify_cmd,
    )

    cli.add_command(check.check)
    cli.add_command(check.rules)
    cli.add_command(policy_cmd.policy)
    cli.add_command(schemas_cmd.schemas)
    for command in (pipeline_cmd.broker, pipeline_cmd.simulate, pipeline_cmd.consume, pipeline_cmd.run,
                    pipeline_cmd.db, sql_cmd.sql, demo_cmd.demo, alerts_cmd.alerts,
                    dashboard_cmd.dashboard, report_cmd.report, subject_cmd.subject, verify_cmd.verify):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="privaudit")
