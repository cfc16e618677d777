"""Benchmarks (`python -m bench.<name>`). Both sides of every ratio run in one process or one
service, on the kernels the service itself uses: the CPU settings are chosen before any
benchmark imports TensorFlow, as `finetune` and the workers choose them (`model.network.cpu_kernels`)."""

from model.network.cpu_kernels import choose_cpu_settings

choose_cpu_settings()
