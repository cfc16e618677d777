"""`finetune up` owns its workers: however it is stopped, none is left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.utils.processes import start_embedded

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_up_stops_its_workers(tmp_path, sig):
    up, _ = start_embedded(tmp_path / "data", tmp_path / "up.log")
    try:
        deadline = time.monotonic() + 60
        while len(workers := children_of(up.process.pid)) < 2:
            assert time.monotonic() < deadline, up.output()[-3000:]
            time.sleep(0.2)
        up.process.send_signal(sig)  # to `up` alone, as `kill <pid>` does; not to its process group
        up.process.wait(timeout=90)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in workers if alive(pid)] == [], up.output()[-3000:]
    finally:
        up.stop()
