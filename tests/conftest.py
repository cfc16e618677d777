import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import model  # noqa: E402,F401  before any test imports TensorFlow: the kernels the service uses


def pytest_report_header(config):
    """Free disk where the tests write: a run peaks at about 3.5 GB there (README, Development)."""
    import shutil
    import tempfile

    folder = tempfile.gettempdir()
    return f"free disk in {folder}: {shutil.disk_usage(folder).free / 2**30:.1f} GiB (a run needs about 3.5)"
