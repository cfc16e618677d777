"""Which precision a run computes in: `auto` resolved against the hardware it runs on.

bfloat16 where the hardware runs it natively: an NVIDIA GPU of compute capability 8.0 or newer,
or an x86 CPU with AMX or AVX512_BF16 while oneDNN is on (`model/network/cpu_kernels.py` turns it on for
x86; TensorFlow's own bfloat16 kernels, without oneDNN, are far slower than float32); float16 on
older NVIDIA GPUs; float32 elsewhere.
Training's variables stay float32 under every policy (predictors in half precision hold their
weights in it: `build_alexnet(predict_only=True)`); LRN, the input normalization and the logits
compute in float32, and exports are float32 graphs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def resolve(precision: str) -> str:
    """`float32`, `bfloat16` or `float16`; `auto` becomes what this machine runs best."""
    if precision != "auto":
        return precision
    return _auto()


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy of a resolved precision."""
    return POLICIES[precision]


@functools.cache
def _auto() -> str:
    capability = _gpu_capability()
    if capability is not None:
        return "bfloat16" if capability >= (8, 0) else "float16"
    return "bfloat16" if cpu_runs_bfloat16() else "float32"


def cpu_runs_bfloat16(cpuinfo: str | None = None, onednn: str | None = None) -> bool:
    """True on an x86 CPU with AMX or AVX512_BF16 flags while oneDNN is on (the engine's default on x86)."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") if onednn is None else onednn
    if onednn.strip().lower() in ("0", "false", "off"):
        return False
    return any(flag in cpu_flags(cpuinfo) for flag in CPU_BF16_FLAGS)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags as Linux lists them (`/proc/cpuinfo` unless given); empty elsewhere."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return flags


def _gpu_capability() -> tuple[int, int] | None:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            return tuple(capability)
    return None
