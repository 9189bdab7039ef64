"""ExecuTorch: the .pte format (export, fidelity, check), the host backend beside LiteRT, the phone path through
the user's executor_runner (adb stand-in), and vendor NPU delegates loaded by benchmark_model.

Exports use a tiny network (four layers, 32×32 input) so the whole file stays within seconds of lowering; the
full-size figures (MobileNetV4-Conv-S) are in docs/executorch.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from deploykit.backends.adbexecutorch import parse_runner_output, runner_args
from deploykit.store import Store
from tests.conftest import cli

HERE = Path(__file__).parent
needs_executorch = pytest.mark.skipif(
    importlib.util.find_spec("executorch") is None or importlib.util.find_spec("executorch.exir") is None,
    reason="ExecuTorch is not installed (pip install 'deploykit[executorch]')",
)
TINY = "tests.test_executorch:tiny_net"


class TinyNet(nn.Module):
    """A MobileNet-shaped stack: stem conv, depthwise, pointwise, pooled classifier, then log-softmax, which
    XNNPACK does not take: it stays on the portable kernels, which ``check`` must list."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pw(self.dw(self.stem(x)))
        return torch.log_softmax(self.fc(x.mean((2, 3))), dim=1)


def tiny_net():
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture(scope="module")
def pte(tmp_path_factory):
    """fp32 and int8 .pte files of the tiny net, exported once for the module."""
    from deploykit.exporters.pipeline import ExportRequest, export

    if importlib.util.find_spec("executorch.exir") is None:
        pytest.skip("ExecuTorch is not installed (pip install 'deploykit[executorch]')")
    out = tmp_path_factory.mktemp("pte")
    return {
        p: export(
            ExportRequest(
                TINY, "executorch", p, out=out, input_shape=(1, 3, 32, 32), calibration_samples=8, verify_samples=4
            )
        )
        for p in ("fp32", "int8")
    }


@needs_executorch
def test_export_fp32_and_int8_verified_with_the_tflite_status_words(pte):
    fp32, int8 = pte["fp32"].manifest, pte["int8"].manifest
    assert pte["fp32"].path.suffix == ".pte" and pte["fp32"].path.stat().st_size > 0
    assert fp32.status == "verified" and fp32.fidelity["reference"] == "pytorch-fp32", fp32.fidelity
    assert fp32.fidelity["cosine_min"] >= 0.9999 and fp32.inputs[0].shape == [1, 3, 32, 32]
    # int8: judged like TFLite's int8 file, against PyTorch's simulated int8 program and against float PyTorch
    f = int8.fidelity
    assert int8.status in ("verified", "converter-consistent") and f["reference"] == "pytorch-int8-simulated", f
    assert (int8.status == "verified") == (not f["shortfalls"]) and f["passed"] and "vs_fp32" in f
    assert f["kernel_agreement"]["cosine_min"] > 0 and "rounding noise" in f["threshold_rule"]
    assert any("macOS" in n for n in int8.notes)  # Core ML/MPS delegates: said, not silently skipped
    # the XNNPACK delegate took the convolutions; log-softmax stayed outside, on the portable kernels
    assert fp32.ops.get("delegate:XnnpackBackend", 0) >= 1 and any("log_softmax" in k for k in fp32.ops)
    assert fp32.tools.get("executorch", "").startswith("1.")


@needs_executorch
def test_check_lists_undelegated_ops(pte):
    from deploykit.exporters.compat import check

    result = check(pte["fp32"].path, "executorch-xnnpack")  # what `deploykit check --target` prints
    names = [f["name"] for f in result["findings"]]
    assert any("log_softmax" in n for n in names) and all(f["severity"] == "warning" for f in result["findings"])
    # XNNPACK's partitions on either side of the op it does not take
    assert set(result["delegates"]) == {"XnnpackBackend"} and result["summary"]["ok"]
    assert pte["fp32"].manifest.compatibility["executorch-xnnpack"]["findings"] == result["findings"]


@needs_executorch
def test_host_bench_measures_executorch_beside_litert(pte, tmp_path):
    """`bench --device host` on the .pte: the executorch-xnnpack row, timed by the same harness, in a child."""
    db = tmp_path / "r.db"
    r = cli(
        "bench", "--device", "host", "--artifact", str(pte["int8"].path), "--runs", "20", "--repetitions", "2",
        "--warmup", "5", "--db", str(db), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = {m["target"]: m for m in json.loads(r.stdout)}
    assert set(rows) == {"host/executorch-xnnpack/int8"}, rows
    row = rows["host/executorch-xnnpack/int8"]
    assert row["status"] == "ok" and 0 < row["median_ms"] < 1000
    assert row["env"]["runtime"].startswith("executorch ") and row["env"]["threads"] >= 1
    with Store(db) as s:
        assert [m.backend for m in s.query()] == ["executorch-xnnpack"]
    html = tmp_path / "r.html"
    r = cli("report", "--db", str(db), "--out", str(html))
    assert r.returncode == 0, r.stderr
    assert "host/executorch-xnnpack/int8" in html.read_text()  # the report draws the row


def test_runner_output_parsed_in_the_format_its_source_prints():
    text = (HERE / "fixtures" / "executor_runner.txt").read_text()
    text = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    its = "".join(f"I 00:00:00.1{i} executorch:executor_runner.cpp:708] Iteration {i + 1} of 3: {t} ms\n" for i, t in
                  enumerate((20.5, 10.25, 10.0)))  # fmt: skip
    out = parse_runner_output(text.format(threads=4, model="m.pte", iterations=its, n=3, total="40.750000"))
    assert out["load_ms"] == 29.712 and out["iterations"] == [20.5, 10.25, 10.0]
    assert (out["executions"], out["total_ms"]) == (3, 40.75) and not out["errors"]
    # an Android-PAL build logs the same messages to logcat, tag ExecuTorch
    logcat = "11-23 10:31:13.006  4242  4242 I ExecuTorch: Model executed successfully 50 time(s) in 612.5 ms.\n"
    assert parse_runner_output(logcat)["total_ms"] == 612.5
    assert runner_args("/r/er", "/r/m.pte", 60, 4) == ["/r/er", "--model_path=/r/m.pte", "--num_executions=60",
                                                       "--cpu_threads=4"]  # fmt: skip


@pytest.fixture()
def standin(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "adb").write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / "adb_standin.py"} "$@"\n')
    (bindir / "adb").chmod(0o755)
    (tmp_path / "benchmark_model").write_bytes(b"\x7fELF stand-in")
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "DEPLOYKIT_BENCHMARK_MODEL": str(tmp_path / "benchmark_model"),
        "STANDIN_LOG": str(tmp_path / "calls.jsonl"),
        "STANDIN_STATE": str(tmp_path / "state"),
        "HOME": str(tmp_path),  # no runner or delegate in a real ~/.cache
    }
    env.pop("DEPLOYKIT_EXECUTORCH_RUNNER", None)
    env.pop("DEPLOYKIT_DELEGATE_LIBRARY", None)
    return env, tmp_path


def _calls(tmp):
    return [json.loads(line) for line in (tmp / "calls.jsonl").read_text().splitlines()]


@needs_executorch
def test_phone_runs_the_pte_with_the_users_runner(standin, pte):
    env, tmp = standin
    runner = tmp / "xnn_executor_runner"
    runner.write_bytes(b"\x7fELF stand-in")
    db = tmp / "r.db"
    path = pte["int8"].path
    r = cli(
        "bench", "--device", "pixel8", "--artifact", str(path), "--runner", str(runner), "--runs", "50",
        "--repetitions", "2", "--warmup", "3", "--db", str(db), "--json", env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = {m["target"]: m for m in json.loads(r.stdout)}
    assert set(rows) == {"pixel8/executorch-xnnpack/int8"}, rows
    stats = rows["pixel8/executorch-xnnpack/int8"]["stats"]
    # per-iteration lines: each runner process's warm-up executions dropped (its first is the cold one), then
    # 12.0/12.5/13.0 ms in turn → p50 12.5
    assert stats["n"] == 100 and stats["p50"] == pytest.approx(12.5) and stats["max"] < 30
    assert stats["init_ms"] == pytest.approx(29.712)
    calls = _calls(tmp)
    assert ["-s", "37071FDJH0005C", "push", str(runner), "/data/local/tmp/deploykit/executor_runner"] in calls
    run = [
        c for c in calls if c[2:3] == ["shell"] and any(w.endswith("/executor_runner") for w in c) and "chmod" not in c
    ]
    assert run[0][3:6] == ["taskset", "100", "/data/local/tmp/deploykit/executor_runner"]
    assert f"--model_path=/data/local/tmp/deploykit/{path.name}" in run[0] and "--num_executions=53" in run[0]
    assert "--num_executions=53" in run[1]  # each repetition is a new process: warm-up in each


def test_phone_executorch_without_a_runner_is_a_one_line_usage_error(standin, tmp_path):
    env, tmp = standin
    r = cli("bench", "--device", "pixel8", "--model", "mnv4_conv_s", "--backend", "executorch-xnnpack", env=env)
    assert r.returncode == 2 and "--runner" in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    r = cli("bench", "--device", "pixel8", "--model", "mnv4_conv_s", "--runner", str(tmp / "nope"), env=env)
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr


def test_vendor_npu_delegate_loaded_by_benchmark_model(standin):
    """litert-qnn: the delegate library and its sibling libraries pushed, benchmark_model run with
    --external_delegate_path/--external_delegate_options and their library paths, the delegate's summary parsed."""
    env, tmp = standin
    lib = tmp / "qnn" / "libQnnTFLiteDelegate.so"
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF")
    (lib.parent / "libQnnHtp.so").write_bytes(b"\x7fELF")
    profiles = tmp / "profiles"
    profiles.mkdir()
    (profiles / "qnnphone.toml").write_text(
        'name = "qnnphone"\ndisplay = "a Snapdragon phone"\nreach = "adb"\nmatch = "Pixel 8"\n'
        '[[targets]]\nbackend = "litert-qnn"\nprecision = "fp32"\nsource = "test"\n'
    )
    tflite = HERE / "fixtures" / "thirdparty" / "face_detection_short_range.tflite"
    base = ["bench", "--device", "qnnphone", "--profiles", str(profiles), "--artifact", str(tflite), "--runs", "10"]
    r = cli(*base, "--backend", "litert-qnn", "--json", env=env)
    assert r.returncode == 2 and "--delegate-library" in r.stderr, r.stderr  # asked for, cannot run: why
    r = cli(*base, "--repetitions", "2", "--delegate-library", str(lib), "--db", str(tmp / "r.db"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["backend"] == "litert-qnn" and row["median_ms"] == pytest.approx(0.8847)
    assert row["delegate"]["name"] == "TfLiteQnnDelegate" and row["delegate"]["delegated_nodes"] == 31
    calls = _calls(tmp)
    remote = "/data/local/tmp/deploykit"
    assert ["-s", "37071FDJH0005C", "push", str(lib), f"{remote}/libQnnTFLiteDelegate.so"] in calls
    assert ["-s", "37071FDJH0005C", "push", str(lib.parent / "libQnnHtp.so"), f"{remote}/libQnnHtp.so"] in calls
    bench = [c for c in calls if c[2:3] == ["shell"] and "chmod" not in c and f"{remote}/benchmark_model" in c]
    assert bench[0][3:6] == ["env", f"LD_LIBRARY_PATH={remote}", f"ADSP_LIBRARY_PATH={remote}"]
    assert f"--external_delegate_path={remote}/libQnnTFLiteDelegate.so" in bench[0]
    assert "--external_delegate_options=backend_type:htp" in bench[0]


@needs_executorch
def test_missing_executorch_is_one_line(tmp_path):
    """Without the package: a one-line error naming the extra (simulated by hiding the module)."""
    code = (
        "import sys, importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n.startswith('executorch') else real(n, *a)\n"
        "from deploykit.cli import main; sys.argv = ['deploykit'] + sys.argv[1:]; main()"
    )
    r = __import__("subprocess").run(
        [sys.executable, "-c", code, "export", TINY, "--to", "executorch", "--input-shape", "1,3,32,32",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=HERE.parent,
    )  # fmt: skip
    assert r.returncode == 2 and "deploykit[executorch]" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.pte*"))  # nothing half-written
