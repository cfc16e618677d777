"""The HTTP shell: FastAPI routes over `core/`; TensorFlow is imported only when /predict needs it."""

from model.network.cpu_kernels import choose_cpu_settings

choose_cpu_settings()  # /predict runs TensorFlow in this process: its CPU settings come before it starts
