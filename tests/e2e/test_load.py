"""Under load: prediction never waits behind training, and a backlog of jobs runs in order, each once."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from testkit.images import make_image
from testkit.service import upload_and_wait, wait_for

pytestmark = pytest.mark.e2e
LOAD_SECONDS = float(os.environ.get("FINETUNE_TEST_LOAD_SECONDS", "60"))


def test_sixteen_clients_predict_while_a_job_trains(start_service, tmp_path):
    service = start_service()
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=10)
    job_id = http.post(
        "/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1000, "batch_size": 2}
    ).json()["id"]
    wait_for(lambda: len(http.get(f"/jobs/{job_id}/metrics").json()["train"]) >= 2, timeout=180)
    image = make_image(0, 3)
    assert (
        http.post("/predict", files={"image": ("a.jpg", image)}, data={"model": "imagenet"}).status_code
        == 200
    )
    steps_before = http.get(f"/jobs/{job_id}").json()["progress"]["step"]
    deadline = time.monotonic() + LOAD_SECONDS

    def client_loop(_):
        ok, failures = 0, []
        with httpx.Client(base_url=service.url, timeout=60) as client:
            while time.monotonic() < deadline:
                try:
                    response = client.post(
                        "/predict",
                        files={"image": ("a.jpg", image)},
                        data={"model": "imagenet", "top_k": "3"},
                    )
                    if response.status_code == 200:
                        ok += 1
                    else:
                        failures.append(response.status_code)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
        return ok, failures

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client_loop, range(16)))
    served = sum(ok for ok, _ in results)
    failures = [f for _, fs in results for f in fs]
    during = http.get(f"/jobs/{job_id}").json()
    print(
        f"\nload: {served} predictions in {LOAD_SECONDS:.0f} s from 16 clients, {len(failures)} errors; "
        f"training went from step {steps_before} to {during['progress']['step']}"
    )
    assert failures == [] and served > 0
    assert during["status"] == "running" and during["progress"]["step"] > steps_before
    assert http.post(f"/jobs/{job_id}/cancel").status_code == 200
    assert wait_for(lambda: http.get(f"/jobs/{job_id}").json()["status"] == "cancelled", timeout=60)


def test_twenty_jobs_run_in_submission_order_each_once(start_service, tmp_path):
    service = start_service()
    http = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(http, tmp_path, per_class=6)
    ids = [
        http.post(
            "/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 8, "seed": i}
        ).json()["id"]
        for i in range(20)
    ]
    wait_for(
        lambda: all(http.get(f"/jobs/{i}").json()["status"] in ("succeeded", "failed") for i in ids),
        timeout=900,
        interval=2,
    )
    jobs = [http.get(f"/jobs/{i}").json() for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 20, service.logs()
    assert [j["attempts"] for j in jobs] == [1] * 20
    assert sorted(jobs, key=lambda j: j["started_at"]) == jobs  # the order they were submitted
    for first, second in zip(jobs, jobs[1:]):
        assert first["finished_at"] <= second["started_at"]  # one at a time on one worker
    for job_id in ids:
        steps = [p["step"] for p in http.get(f"/jobs/{job_id}/metrics").json()["train"]]
        assert steps == list(range(1, len(steps) + 1)) and steps


def test_a_predict_flood_is_bounded_and_the_rest_of_the_api_stays_up(start_service):
    """64 clients × 16 images at a /predict that admits 4 requests: each answer is 200 or 503 with
    Retry-After (never a hang or another error), and /healthz and GET /jobs answer all along."""
    service = start_service(workers=0, predict_queue_size=4)
    images = [("image", (f"{i}.jpg", make_image(i % 2, i))) for i in range(16)]
    finished = False

    def flood(_):
        answers = []
        with httpx.Client(base_url=service.url, timeout=120) as client:
            for _ in range(2):
                response = client.post("/predict", files=images, data={"model": "imagenet", "top_k": "1"})
                answers.append((response.status_code, response.headers.get("retry-after"), response.json()))
        return answers

    def watch():
        seen = []
        with httpx.Client(base_url=service.url, timeout=60) as client:
            while not finished:
                seen += [client.get(path).status_code for path in ("/healthz", "/jobs")]
        return seen

    with ThreadPoolExecutor(65) as pool:
        watcher = pool.submit(watch)
        answers = [a for client in pool.map(flood, range(64)) for a in client]
        finished = True
        watched = watcher.result()
    statuses = {status for status, _, _ in answers}
    assert statuses == {200, 503}, statuses  # served up to the bound, the rest told to come back
    for status, retry_after, body in answers:
        if status == 503:
            assert retry_after == "1" and body["error"] == "ServiceBusy", body
        else:
            assert len(body["predictions"]) == 16
    assert watched and set(watched) == {200}
    print(f"\nflood: {sum(s == 200 for s, _, _ in answers)} of {len(answers)} answered 200, the rest 503")
