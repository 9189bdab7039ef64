"""Runners: turn an Artifact on a Target into a Measurement. One module per way of reaching a device.

- ``host``: this machine (LiteRT+XNNPACK, ONNX Runtime, PyTorch), each benchmark in a child process.
- ``adb``: Android phones through adb and the official ``benchmark_model`` binary.
- ``apple``: Core ML on the Mac deploykit runs on (macOS only).
- ``coral``: an Edge TPU through LiteRT and libedgetpu.

Which of these ran on real hardware is stated in docs/benchmarks.md: only ``host`` has; the others are tested
against recorded real tool output and a scripted stand-in for adb/benchmark_model.
"""
