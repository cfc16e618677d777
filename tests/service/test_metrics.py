"""GET /metrics: Prometheus' text format with the service's own numbers, behind a token unless public."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from core.config import get_settings
from testkit.images import make_image
from tests.service.test_worker import create_job
from worker.runner import run_job


def samples(client, headers: dict | None = None) -> dict[tuple, float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_predictions_jobs_queues_and_cache_are_counted(client, tmp_path):
    before = samples(client)
    job_id = create_job(client, tmp_path, num_epochs=1)  # queued: one message in the train queue
    queued = samples(client)
    assert value(queued, "finetune_jobs", status="queued") == 1
    assert value(queued, "finetune_queue_messages", queue="train") >= 1
    assert run_job(job_id, get_settings()) == "succeeded"
    client.get("/jobs/nope")
    image = make_image(0, 5)
    response = client.post("/predict", files=[("image", ("a.jpg", image)), ("image", ("b.jpg", image))],
                           data={"job_id": job_id})  # fmt: skip
    assert response.status_code == 200
    after = samples(client)
    assert value(after, "finetune_jobs", status="succeeded") == 1
    first = {r: value(after, "finetune_feature_cache_jobs", result=r) for r in ("hit", "miss")}
    assert sum(first.values()) == 1  # a miss, or a hit when an earlier test cached the same images
    route = {"method": "GET", "route": "/jobs/{job_id}", "status": "404"}
    assert (
        value(after, "finetune_http_requests_total", **route)
        == value(before, "finetune_http_requests_total", **route) + 1
    )
    predicted = "finetune_predictions_total"
    assert value(after, predicted, model="job") - value(before, predicted, model="job") == 2
    batches = "finetune_predict_batch_images_count"
    assert value(after, batches) > value(before, batches)
    second = create_job(client, tmp_path, num_epochs=1)
    assert run_job(second, get_settings()) == "succeeded"
    assert (
        value(samples(client), "finetune_feature_cache_jobs", result="hit") == first["hit"] + 1
    )  # same data


def test_metrics_need_a_token_unless_public(service_env, clean_tables, monkeypatch):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from testkit.service import LOOPBACK_CLIENT

    monkeypatch.setenv("FINETUNE_API_TOKENS", '["scrape-token"]')
    get_settings.cache_clear()
    try:
        with TestClient(create_app(), client=LOOPBACK_CLIENT) as locked:
            assert locked.get("/metrics").status_code == 401
            assert locked.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).status_code == 200
        monkeypatch.setenv("FINETUNE_METRICS_PUBLIC", "true")
        get_settings.cache_clear()
        with TestClient(create_app(), client=LOOPBACK_CLIENT) as public:
            assert public.get("/metrics").status_code == 200
            assert public.get("/jobs").status_code == 401  # only /metrics opened
    finally:
        get_settings.cache_clear()
