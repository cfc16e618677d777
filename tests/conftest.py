import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import model  # noqa: E402,F401  before any test imports TensorFlow: the kernels the service uses
