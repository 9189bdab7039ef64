"""What many test modules share: running the CLI (as a user does, or in-process where only its exit status and
output are tested), a layer cache inside the test run's own temporary tree, and the small exported files most
tests need, exported once per session."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# test-support modules (synthetic_weights, adb_standin) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))

EXE = shutil.which("deploykit") or str(Path(sys.executable).parent / "deploykit")


def cli(*args: str, cwd=None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`deploykit ARGS` in a child process, as a user runs it: for what only a real process shows (import
    hygiene, signals, stray output of native libraries on the file descriptors)."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


# The zoo's families and the models each must hold (the brief's list)
REQUIRED = {
    "MobileNetV1": {"mnv1_100", "mnv1_075", "mnv1_050", "mnv1_025"},
    "MobileNetV2": {"mnv2_100", "mnv2_050", "mnv2_150", "mnv2_200"},
    "MobileNetV3": {"mnv3_large_100", "mnv3_large_075", "mnv3_large_050", "mnv3_small_100", "mnv3_small_075"},
    "MobileViT": {"mobilevit_xxs", "mobilevit_xs", "mobilevit_s"},
    "MobileNetV4": {"mnv4_conv_s", "mnv4_conv_m", "mnv4_conv_l", "mnv4_hybrid_m", "mnv4_hybrid_l"},
    "RepViT": {"repvit_m0_9", "repvit_m1_0", "repvit_m1_1", "repvit_m1_5", "repvit_m2_3"},
}


def one_line(r, code: int = 2) -> str:
    """The one line a refused command says on stderr, after checking it is one line and the exit status."""
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr  # no leading blank line either
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, cwd=None, env: dict | None = None) -> Ran:
    """`deploykit ARGS` in this process (no interpreter start, no torch import: seconds saved per call), with
    what it prints and its exit status, as :func:`cli` gives them."""
    from deploykit.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    code = 0
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["deploykit", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    """MobileNetV1-0.25 at 64 px as fp32 TFLite, exported once for every module that needs a small real file
    (the AI Hub client, the estimator's graph reader): treat it as read-only."""
    from deploykit.exporters.pipeline import ExportRequest, export

    out = tmp_path_factory.mktemp("tiny-tflite")
    return export(ExportRequest("mnv1_025", "tflite", "fp32", out=out, resolution=64, verify_samples=2)).path


@pytest.fixture(scope="session")
def tiny_int8_tflite(tmp_path_factory) -> Path:
    """The same model as fully-integer int8 TFLite (4 calibration samples), exported once: read-only."""
    from deploykit.exporters.pipeline import ExportRequest, export

    out = tmp_path_factory.mktemp("tiny-int8")
    request = ExportRequest(
        "mnv1_025", "tflite", "int8", out=out, resolution=64, calibration_samples=4, verify_samples=2
    )
    return export(request).path


@pytest.fixture(scope="session")
def tiny_int8_onnx(tmp_path_factory) -> Path:
    """The same model as int8 ONNX (QDQ, ONNX Runtime's quantizer, 4 calibration samples), exported once:
    read-only."""
    from deploykit.exporters.pipeline import ExportRequest, export

    out = tmp_path_factory.mktemp("tiny-int8-onnx")
    request = ExportRequest("mnv1_025", "onnx", "int8", out=out, resolution=64, calibration_samples=4, verify_samples=2)
    return export(request).path


@pytest.fixture(autouse=True, scope="session")
def _layer_cache_inside_the_test_run(tmp_path_factory):
    """The layer cache (DEPLOYKIT_CACHE) lives in the test run's temporary tree, never in the user's home, and
    child processes inherit it."""
    path = tmp_path_factory.mktemp("deploykit-cache")
    saved = os.environ.get("DEPLOYKIT_CACHE")
    os.environ["DEPLOYKIT_CACHE"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("DEPLOYKIT_CACHE", None)
    else:
        os.environ["DEPLOYKIT_CACHE"] = saved


@pytest.fixture(scope="session", autouse=True)
def _no_user_artifact_cache(tmp_path_factory):
    """Never the user's artifact cache (exporters/cache.py), not even for module-scoped fixtures that export
    before a test's own cache is set; subprocesses inherit it."""
    os.environ["DEPLOYKIT_ARTIFACT_CACHE"] = str(tmp_path_factory.mktemp("session-artifact-cache"))


@pytest.fixture(autouse=True)
def _own_artifact_cache(tmp_path_factory, monkeypatch):
    """Each test its own artifact cache: a file another test cached must not stand in for an export a test makes
    (or breaks on purpose)."""
    monkeypatch.setenv("DEPLOYKIT_ARTIFACT_CACHE", str(tmp_path_factory.mktemp("artifact-cache")))
