"""The memory estimator (deploykit.estimator.memory): an arena planner on lifetimes, and the graphs it reads
(a .tflite's, an .onnx's, the model's torch.export graph) agreeing with each other on the same model."""

from __future__ import annotations

import pytest

from deploykit.estimator.memory import (
    ALIGN,
    estimate_file_size,
    estimate_memory,
    file_memory,
    live_peak,
    model_memory,
    plan_arena,
)
from deploykit.graph import LiveTensor, MemoryGraph


def test_the_planner_reuses_dead_tensors_space():
    # a chain a → b → c → d: a and c never live together, so c takes a's place; b and d likewise
    chain = [LiveTensor("a", 1024, 0, 1), LiveTensor("b", 2048, 1, 2), LiveTensor("c", 1024, 2, 3),
             LiveTensor("d", 2048, 3, 4)]  # fmt: skip
    assert plan_arena(chain) == 3072 == live_peak(chain, 4)
    # a residual: x stays live across two ops, so three tensors are live at op 2
    residual = [LiveTensor("x", 1000, 0, 3), LiveTensor("y", 500, 1, 2), LiveTensor("z", 500, 2, 3)]
    assert live_peak(residual, 3) == 2000 and plan_arena(residual) == 1024 + 512 + 512  # offsets aligned to 64
    assert ALIGN == 64 and plan_arena([]) == 0


def test_weights_plus_arena_is_the_total():
    e = estimate_memory(MemoryGraph(10_000, [LiveTensor("a", 640, 0, 1)], 1, "toy"))
    assert e.total_bytes == 10_640 and e.to_dict()["total_bytes"] == 10_640 and e.largest_tensor_bytes == 640


def test_the_file_graphs_and_the_model_graph_agree(tiny_tflite, tiny_int8_tflite, tmp_path):
    from deploykit.exporters.pipeline import ExportRequest, export

    onnx = export(ExportRequest("mnv1_025", "onnx", "fp32", out=tmp_path, resolution=64, verify_samples=2)).path
    fp32, int8, from_onnx = file_memory(tiny_tflite), file_memory(tiny_int8_tflite), file_memory(onnx)
    model = model_memory("mnv1_025", "fp32", resolution=64)
    assert fp32.source == "tflite file" and from_onnx.source == "onnx file" and "torch.export" in model.source
    for other in (from_onnx, model):
        assert other.weights_bytes == pytest.approx(fp32.weights_bytes, rel=0.02)
        assert other.arena_bytes == pytest.approx(fp32.arena_bytes, rel=0.15)
    # int8: a quarter of the weights (plus int32 biases), about a quarter of the activations
    assert 0.24 < int8.weights_bytes / fp32.weights_bytes < 0.3 and int8.arena_bytes < fp32.arena_bytes / 3
    assert model_memory("mnv1_025", "int8", resolution=64).weights_bytes == pytest.approx(fp32.weights_bytes / 4, 0.02)
    # the file is about its weights: the size estimate from the parameters is within a few per cent
    assert estimate_file_size(fp32.weights_bytes // 4, "fp32") == pytest.approx(tiny_tflite.stat().st_size, rel=0.05)


def test_an_estimate_row_carries_the_deployments_memory_and_size(tmp_path):
    """For a device nobody has attached: the estimate rows of `deploykit estimate` hold the graph's memory and the
    file size at each target's precision (fp16 on the GPU, int8 on the CPU), in their details."""
    from deploykit.store import Store
    from tests.conftest import invoke

    db = tmp_path / "e.db"
    r = invoke("estimate", "mnv1_025", "--device", "pixel8", "--db", str(db))
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        rows = {m.target: m for m in s.query()}
    gpu, cpu = rows["pixel8/litert-gpu/fp16"].cost(), rows["pixel8/litert-xnnpack/int8"].cost()
    assert (
        gpu["size_bytes"] == pytest.approx(2 * cpu["size_bytes"], rel=0.01)
        and gpu["memory_bytes"] > cpu["memory_bytes"]
    )
    memory = rows["pixel8/litert-xnnpack/int8"].details["memory"]
    assert memory["total_bytes"] == memory["weights_bytes"] + memory["arena_bytes"] == cpu["memory_bytes"]
    assert "torch.export" in memory["source"]
