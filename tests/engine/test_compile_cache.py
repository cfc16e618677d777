"""Compiled kernels persist across processes: a second process loads what the first compiled."""

import os
import subprocess
from importlib.metadata import version
from pathlib import Path

from model.network.compile_cache import enable_compile_cache
from testkit.processes import run_python

# a fresh process that runs the fused LRN (an XLA kernel) once, with the cache under argv[1]
PROGRAM = """
import sys
from model.network.compile_cache import enable_compile_cache
enable_compile_cache(sys.argv[1])
import numpy as np, tensorflow as tf
from model.network.layers import _fused_lrn
x = tf.constant(np.ones((2, 5, 5, 8), np.float32))
print(float(tf.reduce_sum(_fused_lrn(x, 2, 1e-4, 1.0))))
"""


def run_once(cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    env |= {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "device_executable_persistor=1"}
    return run_python(PROGRAM, str(cache), env=env)


def test_a_second_process_loads_the_kernels_the_first_compiled(tmp_path):
    first = run_once(tmp_path / "compiled")
    assert first.returncode == 0, first.stderr[-2000:]
    entries = list((tmp_path / "compiled" / f"tf-{version('tensorflow')}").glob("*.pb"))
    assert entries, "the first process wrote no compiled kernel"
    assert "Loading cached entry" not in first.stderr
    second = run_once(tmp_path / "compiled")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Loading cached entry" in second.stderr
    assert second.stdout == first.stdout


def test_the_folder_is_named_by_tensorflows_version_however_it_was_installed(monkeypatch):
    import tensorflow as tf

    import model.network.compile_cache

    def not_installed(name):
        raise model.network.compile_cache.PackageNotFoundError(name)

    assert model.network.compile_cache.tensorflow_version() == tf.__version__
    monkeypatch.setattr(model.network.compile_cache, "version", not_installed)
    assert model.network.compile_cache.tensorflow_version() == tf.__version__


def test_an_operators_own_cache_folder_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_persistent_cache_directory=/elsewhere")
    assert enable_compile_cache(tmp_path) is None
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_persistent_cache_directory=/elsewhere"
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    folder = enable_compile_cache(tmp_path)
    assert folder == tmp_path / f"tf-{version('tensorflow')}" and folder.is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={folder}"
