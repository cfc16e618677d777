"""The Celery shell around `model/`: tasks load a row, call the engine, record the outcome."""

from model.network.cpu_kernels import choose_cpu_settings

choose_cpu_settings()  # a worker process runs TensorFlow: its CPU settings come before it starts
