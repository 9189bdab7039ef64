"""Backends: how an artifact runs on a device and is timed. One module per backend, registered in ``base``;
one harness (``harness``) times them all. See docs/architecture.md for adding one."""
