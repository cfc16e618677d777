"""oneDNN for TensorFlow's CPU kernels on every x86 CPU, not only the newest.

TensorFlow turns oneDNN on by default only on x86 CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or
AMX; elsewhere (AVX2 CPUs such as AMD's Zen 3) its Eigen kernels run. On 2 cores of such a CPU
(AMD EPYC, AVX2, 2026-11-26) oneDNN ran the frozen AlexNet layers at 102 img/s against 70 with the
fast kernels (`python -m bench.layer_speed`), and a cold 500-image finetune in 14.9 s against 21.0
(`bench.finetune_speed`). TensorFlow's grouped convolution kernel also exists only with oneDNN.
"""

from __future__ import annotations

import os
import platform
import sys

X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def prefer_onednn() -> bool:
    """Ask for oneDNN in this process unless TF_ENABLE_ONEDNN_OPTS already decides; True when this
    call set it. TensorFlow reads the variable once, so this only counts before it is imported."""
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ or "tensorflow" in sys.modules:
        return False
    if not is_x86():
        return False
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return True


def is_x86() -> bool:
    return platform.machine().lower() in X86
