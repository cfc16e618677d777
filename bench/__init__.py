"""Benchmarks (`python -m bench.<name>`). Both sides of every ratio run in one process or one
service, on the kernels the service itself uses: the engine is imported before any benchmark
imports TensorFlow, so oneDNN is on wherever `model.cpu_kernels` turns it on."""

import model  # noqa: F401
