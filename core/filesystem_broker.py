"""Kombu's filesystem transport (the embedded default's broker), with exchange tables that two
processes can create at once.

Kombu 5.7 creates a missing exchange table with `open("wb")` before taking its lock. Two
processes binding to a new exchange together (the API and both workers start together on a
fresh data folder) can both truncate, then each write its table in turn: the shorter one lands
over the start of the longer, the file no longer parses ("Extra data"), and a worker fails to
start; or the first table is lost. Here a table is opened without truncating, locked, then read,
amended and rewritten whole; an empty file (another process between creating and locking it)
reads as an empty table.
"""

from __future__ import annotations

import os

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


def _entries(text: bytes) -> list:
    return (
        [filesystem.exchange_queue_t(*entry) for entry in loads(bytes_to_str(text))] if text.strip() else []
    )


class Channel(filesystem.Channel):
    def get_table(self, exchange):
        path = self._exchange_file(exchange)
        try:
            with open(path, "rb") as table:
                filesystem.lock(table, filesystem.LOCK_SH)
                try:
                    return _entries(table.read())
                finally:
                    filesystem.unlock(table)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        path = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0) as table:
                filesystem.lock(table, filesystem.LOCK_EX)
                try:
                    entries = _entries(table.read())
                    if entry not in entries:
                        entries.insert(0, entry)
                        table.seek(0)
                        table.truncate()
                        table.write(str_to_bytes(dumps(entries)))
                finally:
                    filesystem.unlock(table)
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
