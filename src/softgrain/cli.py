"""The ``softgrain`` command line.

Thin: every command parses its options, calls the library and formats the result. Bad input
(unknown metal or orientation, malformed numbers, invalid configs) ends with exit code 2 and a
one-line message naming the bad value; nothing deep in the package imports this module.
"""

from __future__ import annotations

import sys

import typer

from softgrain.errors import UserInputError

app = typer.Typer(
    name="softgrain",
    help="Grain selection growth of electrodeposited soft metals (Li, Na, K).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print a one-line error to stderr and exit with code 2."""
    typer.echo(f"softgrain: error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code=2)


def main() -> None:
    """Entry point of the console script: user errors → exit code 2 with one line."""
    try:
        app()
    except UserInputError as exc:
        typer.echo(f"softgrain: error: {' '.join(str(exc).split())}", err=True)
        sys.exit(2)
