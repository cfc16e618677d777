"""XLA-compiled kernels kept on disk between processes.

The fast kernels (LRN, the input normalization) are compiled by XLA once per batch shape, a cost
paid again by every new process (a restarted worker, the API's first
prediction of each batch size). With TensorFlow's persistent cache a new process loads them.
TensorFlow writes each entry to a temporary file and renames it (processes can share the folder)
and checks a loaded entry against the computation it stands for; the folder is per TensorFlow
version, because a compiled executable is only valid for the compiler that made it.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FLAG = "--tf_xla_persistent_cache_directory="


def enable_compile_cache(root: str | os.PathLike) -> Path | None:
    """Use `root`/tf-<version> as this process's compile cache; the folder in use, or None when
    TF_XLA_FLAGS already names one (the operator's choice wins).

    Takes effect if called before TensorFlow compiles anything in this process.
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if FLAG in flags:
        return None
    directory = Path(root).absolute() / f"tf-{tensorflow_version()}"
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}{directory}".strip()
    return directory


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read without importing it where pip knows it."""
    try:
        return version("tensorflow")
    except PackageNotFoundError:  # installed under another name (tensorflow-cpu, tf-nightly, ...)
        import tensorflow as tf

        return tf.__version__
