"""A non-editable install carries the whole package (issue 27: `pip install .` shipped without deploykit.farm, so
`deploykit farm` and `sweep --executor ray` could not import), and its console script runs from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> where pyproject.toml's package-dir puts it in the installed package
MAPPED = {"deploykit": "deploykit", "exporters": "deploykit/exporters", "reports": "deploykit/reports"}
MAPPED["device_profiles"] = "deploykit/device_profiles"
SHIPPED_SUFFIXES = {".py", ".csv", ".json", ".js", ".css", ".toml"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would build, from a copy of the sources (the build writes build/ and egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", *MAPPED):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(
            ROOT / name,
            src / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    [whl] = out.glob("deploykit-*.whl")
    return whl


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{inside}/{p.relative_to(ROOT / folder).as_posix()}"
        for folder, inside in MAPPED.items()
        for p in (ROOT / folder).rglob("*")
        if p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    assert "deploykit/farm/executor.py" in names and "deploykit/reference/published_latencies.csv" in names


def test_a_non_editable_install_runs_every_command_group(wheel, tmp_path):
    """The wheel installed into a fresh venv (its dependencies seen through this venv's site-packages, never the
    editable checkout), run from a folder outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    [site] = venv.glob("lib/python*/site-packages")
    # a .pth line adds the folder only: the editable install's own .pth files in it are not processed
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    exe = venv / "bin" / "deploykit"
    for args in (["--help"], ["farm", "--help"], ["formats", "--json"], ["devices", "--json"]):
        r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr)
    r = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import deploykit, deploykit.farm.executor; print(deploykit.__file__)"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert str(site) in r.stdout and str(ROOT) not in r.stdout  # the installed copy, not the checkout
