"""The embedded default's broker: processes that bind to a new exchange at once keep every binding."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kombu import Connection
from kombu.transport import filesystem

from core.config import Settings
from core.filesystem_broker import Transport
from core.queue import make_celery


def bind(folder: Path, queue: str, routing_key: str, errors: list) -> None:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
    }
    try:
        with Connection("filesystem://", transport=Transport, transport_options=options) as connection:
            channel = connection.default_channel
            channel.exchange_declare("shared", "direct")
            channel.queue_declare(queue)
            channel.queue_bind(queue, "shared", routing_key)
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


def test_two_first_binds_at_once_keep_both(tmp_path, monkeypatch):
    """Kombu's own transport fails in this order: both find no table, both open it (truncating),
    the longer table is written first and the shorter over its start ("Extra data"), or the first
    is truncated away. Forced here: the two look together, and "short" locks after "long"."""
    looked = threading.Barrier(2, timeout=2)
    long_written = threading.Event()
    real_exists, real_lock, real_unlock = Path.exists, filesystem.lock, filesystem.unlock

    def exists(path, *args, **kwargs):
        found = real_exists(path, *args, **kwargs)
        if path.suffix == ".exchange":
            try:
                looked.wait()
            except threading.BrokenBarrierError:
                pass
        return found

    def lock(handle, flags):
        if threading.current_thread().name == "short" and flags == filesystem.LOCK_EX:
            long_written.wait(5)
        real_lock(handle, flags)

    def unlock(handle):
        real_unlock(handle)
        if threading.current_thread().name == "long":
            long_written.set()

    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.setattr(filesystem, "lock", lock)
    monkeypatch.setattr(filesystem, "unlock", unlock)
    errors: list = []
    threads = [
        threading.Thread(
            target=bind, args=(tmp_path, "long", "a-much-longer-routing-key", errors), name="long"
        ),
        threading.Thread(target=bind, args=(tmp_path, "short", "s", errors), name="short"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    table = json.loads((tmp_path / "control" / "shared.exchange").read_text())
    assert sorted(queue for _, _, queue in table) == ["long", "short"]


def test_the_embedded_default_uses_it(tmp_path):
    app = make_celery(Settings(data_dir=tmp_path, broker_url="filesystem://"))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
