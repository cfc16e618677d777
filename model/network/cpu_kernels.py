"""TensorFlow's CPU settings that must be chosen before it starts: oneDNN kernels, pooled memory.

oneDNN: TensorFlow turns it on by default only on x86 CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI
or AMX; elsewhere (AVX2 CPUs such as AMD's Zen 3) its Eigen kernels run, and oneDNN's were the
faster there too (`python -m bench.cpu_settings --setting onednn`; docs: Performance).
TensorFlow's grouped convolution kernel also exists only with oneDNN.

Pooled memory: with oneDNN on, TensorFlow's CPU allocator is oneDNN's, which pools large blocks.
Without it (TF_ENABLE_ONEDNN_OPTS=0, or a CPU where neither TensorFlow nor this module turns it
on), every block comes from malloc, and the frozen prefix's large activations came fresh from the
kernel at every call. TensorFlow's BFC allocator keeps what it took and reuses it, which made
Eigen's kernels faster and measured the same as oneDNN's own pooling (`python -m
bench.cpu_settings --setting allocator`), so it is asked for everywhere. A process keeps the
memory of its peak, as with oneDNN's.
"""

from __future__ import annotations

import os
import platform
import sys

X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def choose_cpu_settings() -> None:
    """Set both before TensorFlow starts; the programs that run it call this first."""
    prefer_onednn()
    prefer_pooled_memory()


def prefer_onednn() -> bool:
    """Ask for oneDNN in this process unless TF_ENABLE_ONEDNN_OPTS already decides; True when this
    call set it. TensorFlow reads the variable once, so this only counts before it is imported."""
    return is_x86() and _set_before_tensorflow("TF_ENABLE_ONEDNN_OPTS", "1")


def prefer_pooled_memory() -> bool:
    """Ask for TensorFlow's BFC allocator on the CPU unless TF_CPU_ALLOCATOR_USE_BFC already
    decides; True when this call set it."""
    return _set_before_tensorflow("TF_CPU_ALLOCATOR_USE_BFC", "true")


def _set_before_tensorflow(name: str, value: str) -> bool:
    """An operator's own setting wins, and once TensorFlow is imported it may have read it."""
    if name in os.environ or "tensorflow" in sys.modules:
        return False
    os.environ[name] = value
    return True


def is_x86() -> bool:
    return platform.machine().lower() in X86
