"""Where the time goes: per-op times measured by a runtime's own profiler, joined to the zoo model's layers.

The package has two floors (docs/architecture.md, tests/test_architecture.py):

- readers, below the formats and backends that call them, importing nothing of deploykit but its errors: the
  typed records (:mod:`.records`) and one module per recorded format: ONNX Runtime's Chrome trace
  (:mod:`.ort_trace`), ExecuTorch's ETDump (:mod:`.etdump`), TFLite ``benchmark_model``'s op-profiling CSV
  (:mod:`.tflite_csv`), Qualcomm AI Hub's ``execution_detail`` (:mod:`.aihub_detail`), and XNNPACK's operator
  names, which two of them print (:mod:`.xnnpack`);
- a stage: :mod:`.join` (each op mapped to the layers it ran, with the estimator's prediction, where it ran and
  ``check``'s findings beside it) and :mod:`.run` (what ``deploykit profile`` does: export, a timed run, a
  profiled run, the join, the stored row).

This file imports nothing, so that a backend importing a reader does not load the stage.
"""
