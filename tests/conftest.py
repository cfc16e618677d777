import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model.network.cpu_kernels import choose_cpu_settings  # noqa: E402

choose_cpu_settings()  # before any test imports TensorFlow: the kernels the service uses


def pytest_report_header(config):
    """Free disk where the tests write: a run peaks at about 3.5 GB there (docs: Development)."""
    import shutil
    import tempfile

    folder = tempfile.gettempdir()
    return f"free disk in {folder}: {shutil.disk_usage(folder).free / 2**30:.1f} GiB (a run needs about 3.5)"
