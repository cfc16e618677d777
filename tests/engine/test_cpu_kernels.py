"""The engine asks for oneDNN on x86 CPUs where TensorFlow leaves it off, and an operator's
TF_ENABLE_ONEDNN_OPTS wins."""

import os
import platform

import pytest

from model.cpu_kernels import X86, prefer_onednn
from tests.utils.processes import run_python

PROGRAM = """
import os, model, tensorflow
from tensorflow.python.util import _pywrap_util_port
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), _pywrap_util_port.IsMklEnabled())
"""


def fresh_process(**env) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = run_python(PROGRAM, env=base | env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.skipif(platform.machine().lower() not in X86, reason="oneDNN is asked for on x86 only")
def test_importing_the_engine_first_turns_onednn_on():
    assert fresh_process() == ["1", "True"]


def test_the_operators_setting_wins():
    assert fresh_process(TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]


def test_nothing_is_set_once_tensorflow_is_imported(monkeypatch):
    import tensorflow  # noqa: F401  (the test process has it already; this says why it matters)

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert prefer_onednn() is False
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
