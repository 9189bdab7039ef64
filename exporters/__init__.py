"""Exporters, one module per target format (ONNX, TFLite/LiteRT, Core ML). Installed as ``deploykit.exporters``."""
