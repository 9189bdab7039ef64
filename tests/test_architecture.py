"""The structure, checked: one-way imports between stages, no import cycles, no format or backend name
branching outside its own plugin module, heavy runtimes imported only where a model runs, and a backend plugin
from outside the package working end to end.

The import contract is checked here, on the source (``ast``), rather than with import-linter: import-linter's
graph builder walks a package's own folder, and deploykit maps the design card's top-level ``exporters/`` and
``reports/`` folders into ``deploykit.exporters``/``deploykit.reports`` (pyproject ``package-dir``), which it
cannot see. Every import counts, including those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    ("cli", ["deploykit.cli", "deploykit.__main__"]),
    ("farm", ["deploykit.farm"]),  # the Ray executor runs the sweep's jobs: above it, below the CLI
    ("orchestration", ["deploykit.sweep"]),
    ("stages", ["deploykit.bench", "deploykit.evaluate", "deploykit.reports", "deploykit.estimator",
                "deploykit.corpus", "deploykit.profile_writer", "deploykit.catalog", "deploykit.importer",
                "deploykit.compare", "deploykit.interleave", "deploykit.profiling"]),
    ("devices", ["deploykit.devices"]),
    ("backends", ["deploykit.backends"]),
    ("formats", ["deploykit.exporters"]),
    ("model analysis", ["deploykit.analysis", "deploykit.weights"]),
    ("zoo", ["deploykit.zoo"]),
    # recorded op profiles, read by the formats' and backends' sessions: below them; the join is a stage
    ("op profile readers", ["deploykit.profiling.records", "deploykit.profiling.xnnpack", "deploykit.profiling.ort_trace",
                            "deploykit.profiling.etdump", "deploykit.profiling.tflite_csv",
                            "deploykit.profiling.aihub_detail"]),
    ("ground floor", ["deploykit.store", "deploykit.artifact", "deploykit.measurement", "deploykit.targets",
                      "deploykit.events", "deploykit.graph", "deploykit.machine", "deploykit.plugins", "deploykit.quality",
                      "deploykit.errors", "deploykit.reference", "deploykit.device_profiles", "deploykit"]),
]  # fmt: skip


def package_dirs() -> dict[str, Path]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: ROOT / folder for pkg, folder in cfg.items()}


def modules() -> dict[str, Path]:
    """Every deploykit module, by its installed name (deploykit.exporters.tflite lives in exporters/tflite.py)."""
    out = {}
    dirs = package_dirs()
    for pkg, folder in dirs.items():
        for f in folder.rglob("*.py"):
            rel = f.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            if any(
                name.startswith(other + ".") or name == other
                for other in dirs
                if other != pkg and other.startswith(pkg + ".")
            ):
                continue  # a folder mapped to its own package elsewhere
            out[name] = f
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {  # `if TYPE_CHECKING:` blocks never run: type hints are not dependencies
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING"
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known}
            found |= subs or {mod}
    out = set()
    for imp in found:
        while imp and imp not in known:  # deploykit.zoo.registry.ModelSpec → deploykit.zoo.registry
            imp = imp.rpartition(".")[0]
        if imp and imp != name:
            out.add(imp)
    return out


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)"
    return rank


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def test_imports_point_down_the_layers():
    violations = []
    for m, deps in graph().items():
        for d in deps:
            if layer_of(d) < layer_of(m):
                violations.append(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})")
    assert not violations, "\n".join(sorted(violations))


def test_no_import_cycles():
    g = graph()
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    # a package importing its own submodules (registration) is not a cycle of stages
    cycles = [c for c in cycles if not all(x == c[0] or x.startswith(c[0] + ".") for x in c)]
    assert not cycles, cycles


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The contract check itself can fail: an upward import in a stage module is reported."""
    fake = dict(modules())
    bad = tmp_path / "bad.py"
    bad.write_text("from deploykit.cli import app\n")
    deps = imports_of("deploykit.store", bad, set(fake))
    assert "deploykit.cli" in deps and layer_of("deploykit.cli") < layer_of("deploykit.store")


def _registry_names():
    from deploykit.backends.base import backends
    from deploykit.exporters.base import formats

    fmts = {f.name: {f.name, f.suffix, *(r for p in f.precisions for r in f.compat_rules(p)), *f.rule_aliases}
            for f in formats()}  # fmt: skip
    bends = {b.name: set(b.serves) | {r.format for r in b.serves.values()} for b in backends()}
    every = set().union(*fmts.values(), *bends.values()) - {None}
    return fmts, bends, every


def _owned(module: str, fmts: dict, bends: dict) -> set[str]:
    """What a module may branch on: a format module (exporters/<format>*.py) its format's names; a backend
    module (deploykit/backends/<plugin>.py) the names it serves and the formats it runs."""
    leaf = module.rpartition(".")[2]
    if module.startswith("deploykit.exporters."):
        return set().union(*(names for f, names in fmts.items() if leaf.startswith(f)))
    if module.startswith("deploykit.backends."):
        return set().union(*(names for b, names in bends.items() if b.startswith(leaf)))
    return set()


def test_no_format_or_backend_name_branches_outside_its_plugin():
    """A string equal to a format or backend name, in a comparison, a dict key or a subscript, only inside the
    plugin module that owns it. (Defaults and help text may name them; branching on them may not.)"""
    fmts, bends, every = _registry_names()
    found = []
    for module, path in modules().items():
        allowed = _owned(module, fmts, bends)
        for node in ast.walk(ast.parse(path.read_text())):
            suspects = []
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    suspects += [side] if isinstance(side, ast.Constant) else getattr(side, "elts", [])
            elif isinstance(node, ast.Dict):
                suspects += [k for k in node.keys if k is not None]
            elif isinstance(node, ast.Subscript):
                suspects.append(node.slice)
            for c in suspects:
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value in every - allowed:
                    found.append(f"{path.relative_to(ROOT)}:{c.lineno}: {c.value!r}")
    assert not found, "\n".join(found)


HEAVY = ("torch", "onnxruntime", "ai_edge_litert", "coremltools", "litert_torch", "numpy", "onnx", "ray")
PROBE = """
import sys
from deploykit.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[0].split(',')))
print('HEAVY=' + ','.join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["models", "--json"],
        ["devices", "--json"],
        ["results", "--db", "{db}"],
        ["formats", "--json"],
        ["farm", "resources", "--json"],
    ],
)
def test_fast_commands_import_no_runtime(args, tmp_path):
    """`--help`, `models`, `devices`, `results` and `formats` answer without torch, LiteRT, ONNX Runtime,
    coremltools or numpy: asserted on the modules the command imported, not on a wall clock."""
    db = tmp_path / "r.db"
    from deploykit.measurement import Measurement
    from deploykit.store import Store

    with Store(db) as s:
        s.add(
            Measurement("m", 224, "tflite", "int8", "host/litert-xnnpack/int8", "host", "litert-xnnpack", median_ms=1.0)
        )
    argv = [a.replace("{db}", str(db)) for a in args]
    env = {**os.environ, "DEPLOYKIT_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    sys_argv0 = ",".join(HEAVY)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(sys_argv0)), *argv],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    heavy = probe.stdout.strip().splitlines()[-1]
    assert heavy == "HEAVY=", f"{args}: {heavy}"


def test_a_backend_plugin_from_outside_the_package(tmp_path):
    """tests/plugins/toy_backend.py is one module and toy.toml one profile: with $DEPLOYKIT_PLUGINS naming it,
    `devices` finds the board, `bench` measures through the shared harness, and the row is stored typed."""
    env = {**os.environ, "DEPLOYKIT_PLUGINS": "tests.plugins.toy_backend", "PYTHONPATH": str(ROOT)}
    exe = [sys.executable, "-m", "deploykit"]
    plugins = str(ROOT / "tests" / "plugins")
    run = lambda *a: subprocess.run([*exe, *a], capture_output=True, text=True, timeout=300, env=env)  # noqa: E731
    devices = run("devices", "--profiles", plugins, "--json")
    assert devices.returncode == 0, devices.stderr
    toy = next(d for d in json.loads(devices.stdout) if d["name"] == "toy")
    assert toy["reachable"] and toy["attached"] == ["toy-0"] and toy["targets"][0]["processor"] == "npu"
    db = tmp_path / "t.db"
    r = run("bench", "--device", "toy", "--profiles", plugins, "--model", "mnv1_025", "--runs", "20",
            "--repetitions", "3", "--warmup", "2", "--db", str(db), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (m,) = json.loads(r.stdout)
    assert m["target"] == "toy/toy-npu/fp32" and m["status"] == "ok" and m["env"]["runtime"] == "toy 1.0"
    assert 1.9 < m["median_ms"] < 50 and m["stats"]["n"] == 60 and m["delegate"] == {"delegate": "toy-npu"}
    from deploykit.store import Store

    with Store(db) as s:
        (row,) = s.query()
    assert row.stats.repetitions == 3 and row.env["model_seen"] == "mnv1_025"


def test_a_failed_sweep_cell_is_named_kept_and_retried_only_when_asked(tmp_path):
    """A failed cell exits 1 with its reason on one line; the next run keeps it (and says so) instead of paying
    for it again; --retry-failed runs it again."""
    env = {**os.environ, "DEPLOYKIT_PLUGINS": "tests.plugins.toy_backend", "PYTHONPATH": str(ROOT)}
    db = tmp_path / "s.db"
    args = [sys.executable, "-m", "deploykit", "sweep", "--models", "mnv1_025", "--devices", "toy", "--profiles",
            str(ROOT / "tests" / "plugins"), "--db", str(db), "--runs", "10", "--repetitions", "2", "--warmup", "1"]  # fmt: skip

    def run(*extra, **more_env):
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=300, env={**env, **more_env})

    first = run(TOY_UNPLUGGED="1")
    assert first.returncode == 1, first.stderr
    failed = [line for line in first.stdout.splitlines() if line.startswith("failed: ")]
    assert failed == ["failed: mnv1_025 on toy/toy-npu/fp32: the toy board stopped answering"]
    again = run()
    assert again.returncode == 1 and "1 already done, ran 0" in again.stdout and "--retry-failed" in again.stdout
    retried = run("--retry-failed")
    assert retried.returncode == 0 and "ran 1: 1 ok" in retried.stdout, retried.stdout


def test_a_native_crash_in_a_backend_is_a_failed_row(tmp_path):
    env = {**os.environ, "DEPLOYKIT_PLUGINS": "tests.plugins.toy_backend", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "deploykit", "bench", "--device", "toycrash", "--profiles", str(ROOT / "tests" / "plugins"),
         "--model", "mnv1_025", "--runs", "5", "--repetitions", "1", "--warmup", "0", "--db", str(tmp_path / "c.db")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("failed: ")]
    assert "toycrash/toy-crash-npu/fp32" in line and "signal 6" in line
