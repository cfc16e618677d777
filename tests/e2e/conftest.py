from __future__ import annotations

import pytest

from testkit.processes import ServiceProcess, free_port, wait_for_log, wait_until_ready
from testkit.processes import service_env as process_env
from tests.service.conftest import clean_tables, service_env, weights_file_for_service  # noqa: F401


class Service:
    """The API and workers as real processes; `add_worker` starts another train worker."""

    def __init__(self, env: dict, log_dir):
        self.env, self.log_dir, self.processes = env, log_dir, []
        self.url = f"http://127.0.0.1:{free_port()}"

    def start(self, workers: int = 1) -> Service:
        self.api = self._spawn(["api", "--port", self.url.rsplit(":", 1)[1]], "api")
        self._spawn(["worker", "--queue", "prepare"], "worker-prepare")
        wait_until_ready(self.url, self.processes)
        for _ in range(workers):
            self.add_worker()
        return self

    def add_worker(self) -> ServiceProcess:
        worker = self._spawn(["worker", "--queue", "train"], f"worker-train-{len(self.processes)}")
        wait_for_log(worker, "ready.")
        return worker

    def _spawn(self, args, name) -> ServiceProcess:
        process = ServiceProcess(args, self.env, self.log_dir / f"{name}.log")
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"==== {p.args}\n{p.output()[-3000:]}" for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture()
def start_service(service_env, clean_tables, tmp_path):  # noqa: F811
    """Start the real processes on PostgreSQL and Redis, with extra settings for the test."""
    started = []

    def start(workers: int = 1, **settings) -> Service:
        env = process_env({**service_env, **{f"FINETUNE_{k.upper()}": str(v) for k, v in settings.items()}})
        service = Service(env, tmp_path)
        started.append(service)
        return service.start(workers)

    yield start
    for service in started:
        service.stop()


@pytest.fixture()
def running_service(start_service):
    service = start_service()
    return {"url": service.url, "processes": service.processes, "env": service.env}
