"""The data folder as another host sees it: the same files at another path."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mounted_elsewhere(source: Path, target: Path) -> Iterator[Path]:
    """`source` bind-mounted at `target` (as a second machine's NFS or CSI volume would be); where
    mounting is not allowed, a symbolic link gives the same files under another path all the same."""
    target.mkdir(parents=True)
    bound = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True).returncode == 0
    if not bound:
        target.rmdir()
        target.symlink_to(source, target_is_directory=True)
    try:
        yield target
    finally:
        if bound:  # before anything removes the folder it sits in: that would empty `source`
            subprocess.run(["umount", "--lazy", str(target)], check=True)
