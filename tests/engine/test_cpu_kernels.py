"""The programs that run TensorFlow (`finetune`, the workers, the API) ask it for oneDNN on x86 CPUs
where TensorFlow leaves it off, and for its pooled (BFC) CPU allocator; an operator's setting wins.
Importing the engine alone changes nothing."""

import os

import pytest

from model.network.cpu_kernels import is_x86, prefer_onednn, prefer_pooled_memory
from testkit.processes import run_python

CHOSEN = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC")
PROGRAM = f"""
import sys
CHOSEN = {CHOSEN!r}
__import__(sys.argv[1])
import os, tensorflow
from tensorflow.python.util import _pywrap_util_port
print(*(os.environ.get(name) for name in CHOSEN), _pywrap_util_port.IsMklEnabled())
"""


def fresh_process(first: str = "worker", **env) -> list[str]:
    """What TensorFlow runs with in a process that imports `first` before it."""
    base = {k: v for k, v in os.environ.items() if k not in CHOSEN}
    done = run_python(PROGRAM, first, env=base | env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.skipif(not is_x86(), reason="oneDNN is asked for on x86 only")
@pytest.mark.parametrize("program", ["worker", "api", "cli.main"])
def test_a_program_that_runs_tensorflow_turns_onednn_on(program):
    onednn, _, enabled = fresh_process(program)
    assert (onednn, enabled) == ("1", "True")


def test_importing_the_engine_changes_nothing():
    assert fresh_process("model.training.loop")[:2] == ["None", "None"]


def test_a_worker_pools_tensorflows_cpu_memory():
    """TensorFlow reads TF_CPU_ALLOCATOR_USE_BFC when it makes its CPU allocator, after this import;
    `bench.cpu_settings --setting allocator` measures the effect (docs: Performance)."""
    assert fresh_process()[1] == "true"


def test_the_operators_settings_win():
    assert fresh_process(TF_ENABLE_ONEDNN_OPTS="0", TF_CPU_ALLOCATOR_USE_BFC="false") == [
        "0",
        "false",
        "False",
    ]


@pytest.mark.parametrize(
    ("prefer", "variable"), [(prefer_onednn, CHOSEN[0]), (prefer_pooled_memory, CHOSEN[1])]
)
def test_nothing_is_set_once_tensorflow_is_imported(monkeypatch, prefer, variable):
    import tensorflow  # noqa: F401  (the test process has it already; this says why it matters)

    monkeypatch.delenv(variable, raising=False)
    assert prefer() is False
    assert variable not in os.environ
