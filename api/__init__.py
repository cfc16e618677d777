"""The HTTP shell: FastAPI routes over `core/`; TensorFlow is imported only when /predict needs it."""
