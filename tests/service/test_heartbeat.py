"""The workers' pulse file, which the container health check (`finetune worker-alive`) reads."""

from __future__ import annotations

from testkit.service import wait_for
from worker.heartbeat import heartbeat_path, seconds_since_beat, start_heartbeat


def test_two_services_on_one_machine_do_not_answer_for_each_other(tmp_path):
    beating, silent = tmp_path / "beating" / "data", tmp_path / "silent" / "data"
    start_heartbeat("prepare", beating, interval=60)  # beats at once, then sleeps
    wait_for(lambda: seconds_since_beat("prepare", beating) is not None, timeout=5)
    assert seconds_since_beat("prepare", beating) < 5
    assert seconds_since_beat("prepare", silent) is None  # another data folder: its own file
    assert seconds_since_beat("train", beating) is None  # another queue: its own file
    assert heartbeat_path("prepare", beating) == heartbeat_path("prepare", beating / ".." / "data")
