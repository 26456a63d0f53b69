"""The ``mast-bench`` command line: a click group with one thin module per verb.

Each command parses and validates its options, calls one plain library function, and prints
where its outputs went. User errors (bad config, bad data folder, bad checkpoint) are turned
into a one-line ``Error: ...`` and exit status 2 without a traceback; Ctrl-C in any command prints
one line (:data:`INTERRUPTED`) and exits with status 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

import click

from mast_bench import __version__
from mast_bench.errors import USER_ERRORS

#: What every command prints when Ctrl-C stops it (exit status 130, the shell's code for SIGINT).
INTERRUPTED = "Stopped: interrupted (Ctrl-C); files already written are complete (each is written atomically)"


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose names come from a registry read on first use.

    The registries of the evaluators live in packages that import torch; reading them only when the option
    is parsed or its help shown keeps ``mast-bench --help`` and every other command from paying that import.

    Args:
        names: returns the valid names (called once).
    """

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names
        self._loaded: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._loaded is None:
            self._loaded = tuple(self._names())
        return self._loaded


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:  # click would print "Aborted!" and exit 1
            click.echo(f"\n{INTERRUPTED}", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="mast-bench")
def main() -> None:
    """Pretrain MAST / VICReg and evaluate how any checkpoint transfers."""


def _register_commands() -> None:
    # Explicit list: the command surface is visible in one place.
    from mast_bench.cli import (  # noqa: F401
        analyze_cmd,
        convert_cmd,
        datasets_cmd,
        demo_cmd,
        detection_cmd,
        evaluate_cmd,
        fewshot_cmd,
        pretrain_cmd,
        reproduce_cmd,
        results_cmd,
    )


_register_commands()
