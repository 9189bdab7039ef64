#!/usr/bin/env python3
"""A scripted stand-in for ``adb`` + an on-device ``benchmark_model``, for tests (no phone here).

It answers the exact argument lists deploykit's adb runner sends, records every call in $STANDIN_LOG (one JSON
list per line), and plays back recorded real benchmark_model output from tests/fixtures/benchmark_model: the GPU
log for --use_gpu, the NNAPI log for --use_nnapi, the (constructed) QNN-delegate log for --external_delegate_path,
the XNNPACK log otherwise (with --report_peak_memory_footprint, the partly constructed peak-memory log),
followed by the op-profiling CSV of tests/fixtures/op_profiles where --enable_op_profiling=true is given; for the user's ExecuTorch ``executor_runner`` it prints that runner's ET_LOG lines.
$STANDIN_DISCONNECT_AFTER=N makes the device vanish after N benchmark runs, as a pulled cable does; a number K in
the file $STANDIN_STATE.flaky makes the next K benchmark runs fail as a briefly dropped device does.
$STANDIN_SERIALS ("SERIAL=Model,SERIAL=Model") attaches other phones instead of the one Pixel 8 (the farm tests'
FAKE_A, FAKE_B).
"""

import json
import os
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"
SERIAL, MODEL = "37071FDJH0005C", "Pixel 8"
PHONES = dict(p.split("=", 1) for p in os.environ.get("STANDIN_SERIALS", f"{SERIAL}={MODEL}").split(","))
args = sys.argv[1:]
state = Path(os.environ.get("STANDIN_STATE", "/tmp/adb-standin-state"))
if os.environ.get("STANDIN_LOG"):
    with open(os.environ["STANDIN_LOG"], "a") as f:
        f.write(json.dumps(args) + "\n")

if args[:2] == ["devices", "-l"]:
    print("List of devices attached")
    for i, (serial, model) in enumerate(PHONES.items()):
        print(
            f"{serial}          device usb:1-{i + 1} product:shiba model:{model.replace(' ', '_')} device:shiba transport_id:3"
        )
    sys.exit(0)
if len(args) < 2 or args[0] != "-s" or args[1] not in PHONES:
    print(f"adb: device '{args[1] if len(args) > 1 else ''}' not found", file=sys.stderr)
    sys.exit(1)
runs = int(state.read_text()) if state.exists() else 0
limit = os.environ.get("STANDIN_DISCONNECT_AFTER")
if limit is not None and runs >= int(limit):
    print(f"adb: device '{args[1]}' not found", file=sys.stderr)
    sys.exit(1)
SERIAL, MODEL = args[1], PHONES[args[1]]
cmd = args[2:]
if cmd[0] == "push":
    print(f"{cmd[1]}: 1 file pushed, 0 skipped. 45.2 MB/s (3570000 bytes in 0.075s)")
elif cmd[:2] == ["shell", "getprop"]:
    print(
        {"ro.product.model": MODEL, "ro.soc.model": "GS301", "ro.build.version.release": "14", "ro.hardware": "shiba"}[
            cmd[2]
        ]
    )
elif cmd[:3] == ["shell", "dumpsys", "thermalservice"]:
    # $STANDIN_THERMAL: statuses to report, one per call, the last repeating ("0" when unset)
    seq = os.environ.get("STANDIN_THERMAL", "0").split(",")
    calls = state.with_suffix(".thermal")
    n = int(calls.read_text()) if calls.exists() else 0
    calls.write_text(str(n + 1))
    status = seq[min(n, len(seq) - 1)]
    text = (FIXTURES / "thermalservice.txt").read_text().replace("Thermal Status: 0", f"Thermal Status: {status}")
    print("".join(line for line in text.splitlines(True) if not line.startswith("#")))
elif cmd[0] == "shell" and any(w.endswith("/executor_runner") for w in cmd):
    # the user's ExecuTorch runner: its ET_LOG lines (tests/fixtures/executor_runner.txt), one Iteration line per
    # execution asked for, the first one slow (warm-up), then 12.0/12.5/13.0 ms in turn
    state.write_text(str(runs + 1))
    flags = dict(w.removeprefix("--").split("=", 1) for w in cmd if w.startswith("--"))
    n = int(flags["num_executions"])
    times = [30.0] + [12.0 + 0.5 * (i % 3) for i in range(1, n)]
    its = "".join(
        f"I 00:00:00.{40000 + i:06d} executorch:executor_runner.cpp:708] Iteration {i + 1} of {n}: {t:f} ms\n"
        for i, t in enumerate(times)
    )
    text = (FIXTURES.parent / "executor_runner.txt").read_text()
    text = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    print(
        text.format(
            threads=flags.get("cpu_threads", "-1"),
            model=flags["model_path"],
            iterations=its,
            n=n,
            total=f"{sum(times):f}",
        ),
        file=sys.stderr,  # ET_LOG writes to stderr on POSIX
    )
elif cmd[0] == "shell" and any("benchmark_model" in w for w in cmd):
    flaky = state.with_suffix(".flaky")
    dropped = int(flaky.read_text()) if flaky.exists() else 0
    if dropped > 0 and any(w.startswith("--graph=") for w in cmd):  # a run, not the chmod
        flaky.write_text(str(dropped - 1))
        print(f"adb: device '{SERIAL}' not found", file=sys.stderr)
        sys.exit(1)
    state.write_text(str(runs + 1))
    name = (
        "gpu.txt"
        if "--use_gpu=true" in cmd
        else "nnapi_logcat.txt"
        if "--use_nnapi=true" in cmd
        else "qnn_htp.txt"
        if any(w.startswith("--external_delegate_path=") for w in cmd)
        else "cpu_xnnpack_peak.txt"
        if "--report_peak_memory_footprint=true" in cmd
        else "cpu_xnnpack.txt"
    )
    print("".join(line for line in (FIXTURES / name).read_text().splitlines(True) if not line.startswith("#")))
    if "--enable_op_profiling=true" in cmd:  # the op table, in the log as the tool prints it without an output file
        print((FIXTURES.parent / "op_profiles" / "mnv1_025_benchmark_model.csv").read_text())
elif cmd[0] == "shell":
    pass  # mkdir / chmod
else:
    print(f"adb: unknown command {cmd[0]}", file=sys.stderr)
    sys.exit(1)
