"""A worker's pulse in a file, for container health checks that must work while a job runs.

A solo-pool Celery worker runs the job in its main thread and cannot answer `celery inspect ping`
until the job ends, so a long job would look unhealthy. A thread that touches a file every few
seconds keeps beating while training runs (TensorFlow releases the GIL), and stops when the
process hangs, is stopped, or dies.
"""

from __future__ import annotations

import atexit
import hashlib
import tempfile
import threading
import time
from pathlib import Path

INTERVAL_SECONDS = 5.0


def heartbeat_path(queue: str, data_dir: Path) -> Path:
    """In the machine's (the container's) temporary folder, named by the service's data folder:
    two services on one machine (two `finetune up`, a test's beside a developer's) do not answer
    for each other, while a container's workers and its health check agree."""
    service = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"finetune-worker-{queue}-{service}.alive"


def start_heartbeat(queue: str, data_dir: Path, interval: float = INTERVAL_SECONDS) -> threading.Thread:
    path = heartbeat_path(queue, data_dir)

    def beat() -> None:
        while True:
            path.touch()
            time.sleep(interval)

    thread = threading.Thread(target=beat, name=f"heartbeat-{queue}", daemon=True)
    thread.start()
    atexit.register(path.unlink, missing_ok=True)  # a worker that stopped has no pulse, and no file
    return thread


def seconds_since_beat(queue: str, data_dir: Path) -> float | None:
    """Seconds since this machine's `queue` worker of the service at `data_dir` last beat, or None
    if it never did."""
    try:
        return time.time() - heartbeat_path(queue, data_dir).stat().st_mtime
    except FileNotFoundError:
        return None
