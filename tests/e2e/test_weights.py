"""A starting train worker logs what it found at the weights path, in the words /readyz uses."""

from __future__ import annotations

import httpx
import pytest

from testkit.processes import wait_for_log
from tests.service.test_weights_check import truncated

pytestmark = pytest.mark.e2e


def test_a_worker_names_an_unusable_weights_file_when_it_starts(start_service, tmp_path):
    weights = truncated(tmp_path / "bvlc_alexnet.npz")
    service = start_service(workers=0, weights_path=weights)
    worker = service.add_worker()
    wait_for_log(worker, "pretrained weights (FINETUNE_WEIGHTS_PATH (bvlc_alexnet.npz)): invalid: ")
    assert "not an .npz archive" in worker.output()
    ready = httpx.get(f"{service.url}/readyz", timeout=10).json()
    assert (
        ready["checks"]["weights"].startswith("invalid: ")
        and "not an .npz archive" in ready["checks"]["weights"]
    )
