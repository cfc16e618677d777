from __future__ import annotations

import pytest

from tests.service.conftest import clean_tables, service_env, weights_file_for_service  # noqa: F401
from tests.utils.processes import ServiceProcess, free_port, service_env as process_env, wait_for_log, wait_until_ready


@pytest.fixture()
def running_service(service_env, clean_tables, tmp_path):  # noqa: F811
    """The API and both workers as real processes on PostgreSQL and Redis."""
    port = free_port()
    env = process_env(service_env)
    processes = [ServiceProcess(["api", "--port", str(port)], env, tmp_path / "api.log"),
                 ServiceProcess(["worker", "--queue", "train"], env, tmp_path / "worker-train.log"),
                 ServiceProcess(["worker", "--queue", "prepare"], env, tmp_path / "worker-prepare.log")]
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, processes)
        for worker in processes[1:]:
            wait_for_log(worker, "ready.")
        yield {"url": base_url, "processes": processes, "env": env}
    finally:
        for process in processes:
            process.stop()
