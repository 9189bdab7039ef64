"""The ``deploykit`` command line: a thin Typer/Rich layer over the library.

One module per command group (zoo, export, bench, results, estimate, compare, sweep), the options and checks they share
in ``common``, and everything printed in ``render``. The commands are registered here, in the order ``--help``
lists them. Every command that prints a table also takes ``--json``. A :class:`DeploykitError` (a user mistake)
becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from ..errors import DeploykitError, Interrupted, plain_text
from . import bench, compare, estimate, export, profile, results, sweep, zoo
from .render import err

app = typer.Typer(
    name="deploykit",
    help="Reference mobile vision backbones: inspect, export, verify, benchmark, estimate and compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# name -> the command's function, or its group's Typer; in the order `deploykit --help` lists them
COMMANDS = {
    "models": zoo.models,
    "info": zoo.info,
    "export": export.export,
    "check": export.check,
    "devices": bench.devices,
    "bench": bench.bench,
    "profile": profile.profile,
    "results": results.results_app,
    "formats": export.formats,
    "estimate": estimate.estimate_app,
    "report": results.report,
    "compare": compare.compare,
    "eval": bench.eval_,
    "sweep": sweep.sweep,
    "farm": sweep.farm_app,
}
for name, command in COMMANDS.items():
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=name)
    else:
        app.command(name)(command)


def main() -> None:
    import logging

    # Libraries' own log lines are noise on the command line, not news: torchao warns about each CUDA kernel library
    # it cannot load on a CPU-only machine, torch's pytree about an Enum that litert-torch registers, absl about
    # its own initialisation. deploykit says what matters in its own words.
    for name in ("torchao", "torch.utils._pytree", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        rc = app(standalone_mode=False)
        if rc == 130:  # Typer turns a Ctrl-C no command caught into a silent exit 130: say it, in one line
            _fail("interrupted", 130)
    except Interrupted as e:  # a command that caught it says what it kept, in its own line
        _say(Text(f"interrupted: {e}"), 130)
    except DeploykitError as e:
        _fail(str(e), e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except typer.Exit as e:
        rc = e.exit_code
    except OSError as e:  # a path the checks above did not foresee (a full disk, a folder gone mid-run): one line
        _fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
    except Exception as e:
        # Usage errors (unknown command, bad option value) are click exceptions, which Typer vendors
        # privately; they are recognised by click's public interface and said in one line too.
        if hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int):
            _fail(f"{e.format_message()} (see `deploykit --help`)", 2)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


def _fail(message: str, code: int) -> None:
    _say(Text("error:", style="red") + Text(" " + " ".join(plain_text(message).split())), code)


def _say(line: Text, code: int) -> None:
    err.print(line, highlight=False, soft_wrap=True)
    sys.exit(code)
