"""What the commands share: option types, shell completion from the registries, and the checks every
option value passes before any work starts (bounds, output paths, shapes). No output here: that is render.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from ..errors import DeploykitError, plain_text


class DefaultCommandGroup(TyperGroup):
    """A command group whose first argument, when it names none of its commands, goes to its default command:
    `deploykit estimate MODEL --device D` means `deploykit estimate predict MODEL --device D`, beside
    `deploykit estimate fit|validate|sweep`."""

    default_command = ""

    @classmethod
    def named(cls, default: str) -> type[DefaultCommandGroup]:
        return type(f"DefaultTo{default.title()}Group", (cls,), {"default_command": default})

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


ProfilesOpt = Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Neither reuse nor keep verified files in the artifact cache (~/.cache/deploykit/artifacts)."
    ),
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


WEIGHTS_HELP = (
    "A checkpoint file (.safetensors/.pth, timm or deploykit keys), 'timm' (the model's timm checkpoint from the"
    " Hugging Face cache, downloaded when online) or hf-hub:ORG/NAME. Without it: seeded random weights."
)


DbOpt = Annotated[str, typer.Option(help="Results database.")]


ModelFilter = Annotated[str | None, typer.Option(help="Only this model.")]


DeviceFilter = Annotated[str | None, typer.Option(help="Only this device.")]


LabelOpt = Annotated[
    str | None,
    typer.Option(
        help="Label every stored row with this run name (a git commit, say): `deploykit compare` selects by it."
    ),
]
ProvenanceFilter = Annotated[str | None, typer.Option(help="measured, estimated or published.")]


# Choices come from the registries (shell completion lists them); importing a registry loads only the plugin
# modules, which import no runtime.
def format_names(incomplete: str = "") -> list[str]:
    from ..exporters.base import names

    return [n for n in names(files_only=True) if n.startswith(incomplete)]


def precision_names(incomplete: str = "") -> list[str]:
    from ..exporters.base import formats

    return sorted({p for f in formats() for p in f.precisions if p.startswith(incomplete)})


def rule_names(incomplete: str = "") -> list[str]:
    from ..exporters.compat import rule_names

    return [n for n in rule_names() if n.startswith(incomplete)]


def backend_names(incomplete: str = "") -> list[str]:
    from ..backends.base import backend_names

    return [n for n in backend_names() if n.startswith(incomplete)]


def device_names(incomplete: str = "") -> list[str]:
    from ..devices import load_profiles

    return [n for n in load_profiles() if n.startswith(incomplete)]


def one_line(text: str | None) -> str:
    return " ".join(plain_text(text or "").split())


# The most a user can ask for: beyond these a run outlasts anyone's patience (bench --runs 10**20 ran silently for
# as long as it was let), so they are refused in one line; they also keep huge integers away from the C code
# (torch, benchmark_model's flags) that would overflow on them.
MAX_RUNS = 100_000  # invocations per repetition: 100 s of a 1 ms model


MAX_REPETITIONS = 100


MAX_WARMUP = 10_000


MAX_THREADS = 1024  # above the cores of a device is refused by the plan, which knows them


MAX_STRICT = 10  # re-measurements of a noisy cell


MAX_SAMPLES = 10_000  # export's calibration and verification inputs


MAX_BATCH = 1024  # bench --batch: images per invocation


MAX_SECONDS = 86_400.0  # --budget, --timeout, --grace, --cooldown: a day


def bounded(option: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    """``low <= value <= high`` (``low < value`` with ``low_open``), or one line naming the option (exit 2)."""
    above_low = low < value if low_open else low <= value
    if not (above_low and value <= high):  # NaN fails both comparisons
        shown = f"{value:g}" if isinstance(value, float) else str(value)  # a 400-digit int cannot be a float
        shown = shown if len(shown) <= 24 else shown[:20] + "…"
        least = f"above {low:g}" if low_open else f"at least {low:g}"
        raise DeploykitError(f"{option} {shown}: give {least} and at most {high:g}")


def check_method(
    runs: int, repetitions: int, warmup: int, strict: int, budget: float | None = None, timeout: float | None = None
) -> None:
    bounded("--runs", runs, 1, MAX_RUNS)
    bounded("--repetitions", repetitions, 1, MAX_REPETITIONS)
    bounded("--warmup", warmup, 0, MAX_WARMUP)
    bounded("--strict", strict, 0, MAX_STRICT)
    if budget is not None:
        bounded("--budget", budget, 0, MAX_SECONDS, low_open=True)
    if timeout is not None:
        bounded("--timeout", timeout, 0, MAX_SECONDS, low_open=True)


def output_path(text: str, option: str, folder: bool = False) -> Path:
    """An output path checked before any work is done, so that a long run never ends on a path it cannot write:
    not empty, not a folder where a file is asked for (nor a file where a folder is), not a device or a pipe (outputs
    are written to a new file renamed over the path: that would replace them), a link followed, and something can be created
    in the nearest folder that exists (a probe file, removed at once: permission bits alone do not say so for root
    or for /proc)."""
    import os
    import tempfile

    what = "folder" if folder else "file"
    if not text.strip():
        raise DeploykitError(f"{option} is empty: give a {what} to write")
    p = Path(text)
    if p.is_symlink():  # write where it points: the file is replaced by a new one, the link must stay a link
        p = p.resolve()
    if p.exists() and p.is_dir() != folder:
        raise DeploykitError(f"{option} {text}: that is a {'file' if folder else 'folder'}; give a {what}")
    if p.exists() and not folder and not p.is_file():  # a device or a pipe: written by renaming, it would be replaced
        raise DeploykitError(f"{option} {text}: that is not a regular file (a device or a pipe); give a {what}")
    existing = p if folder else p.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DeploykitError(f"{option} {text}: {existing} is a file, so nothing can be created under it")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".deploykit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DeploykitError(f"{option} {text}: cannot create files in {existing} ({e.strerror})") from None
    return p


MAX_LABEL = 100


def check_label(label: str | None) -> str | None:
    """A run label is a name a user types again (`compare BASE NEW`): printable, one line, not too long."""
    if label is None:
        return None
    if not label.strip() or len(label) > MAX_LABEL or not label.isprintable():
        raise DeploykitError(f"--label must be 1-{MAX_LABEL} printable characters on one line, not {label!r}")
    return label


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise DeploykitError(f"--input-shape {text!r} is not a list of integers like 1,3,224,224") from None


def named_shapes(specs: list[str]) -> dict[str, list[int]]:
    """``--input-shape NAME=1,3,640,640`` (repeatable) → {NAME: [1, 3, 640, 640]}."""
    out = {}
    for spec in specs:
        name, eq, dims = spec.rpartition("=")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",")] if eq and name else None
        except ValueError:
            shape = None
        if not shape:
            raise DeploykitError(f"--input-shape {spec!r} is not NAME=D,D,…", hint="e.g. --input-shape x=1,3,640,640")
        out[name] = shape
    return out


def parse_threads(text: str | None) -> list[int] | str | None:
    """``--threads 1,2,4`` (counts, each at least 1) or ``all`` (1 to the device's cores)."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return "all"
    try:  # an empty piece ("1,,2") is a typo, not a count: refused like any other
        counts = sorted({int(x) for x in text.split(",")})
    except ValueError:
        raise DeploykitError(f"--threads {text!r}: give counts such as 1,2,4, or all") from None
    if not counts or counts[0] < 1:
        raise DeploykitError(f"--threads {text!r}: thread counts are at least 1")
    return counts
