"""The dashboard in a real browser against the real API and workers (PostgreSQL, Redis, Celery).

Screenshots for the README are written to $FINETUNE_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from testkit.images import class_folder_zip, make_image
from testkit.service import wait_for
from tests.utils.browser import by_testid, chart_points, element, screenshot, text_of, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def fill(driver, name: str, value) -> None:
    field = element(driver, f"form[data-testid=job-form] [name={name}]")
    field.clear()
    field.send_keys(str(value))


def test_upload_launch_watch_and_inspect_a_finetune(start_service, browser, tmp_path):
    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=14)

    # upload through the page: it goes to the dataset page, which shows it becoming ready
    browser.get(f"{service.url}/ui/datasets")
    element(browser, "[data-testid=upload-form] input[type=file]").send_keys(str(archive))
    element(browser, "[data-testid=upload-form] button").click()
    wait_until(browser, lambda d: "/ui/datasets/" in d.current_url)
    dataset_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(browser, lambda d: text_of(d, "dataset-status") == "ready")
    wait_until(browser, lambda d: len(by_testid(d, "thumbnails").find_elements(By.TAG_NAME, "img")) == 14)
    first = by_testid(browser, "thumbnails").find_element(By.TAG_NAME, "img")
    wait_until(browser, lambda d: first.get_attribute("naturalWidth") == "227")
    screenshot(browser, "dataset")

    # a 422 is shown next to the field it names, and nothing is launched
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=job-form]"))
    fill(browser, "learning_rate", 100)
    by_testid(browser, "launch").click()
    wait_until(browser, lambda d: text_of(d, "error-learning_rate") != "")
    assert "less than or equal to 10" in text_of(browser, "error-learning_rate")
    assert api.get("/jobs").json()["count"] == 0

    # launch through the form; the curves grow while it runs, without a reload
    fill(browser, "learning_rate", 1e-9)  # the model stays near its random start: it gets images wrong
    fill(browser, "num_epochs", 8)
    fill(browser, "batch_size", 2)
    by_testid(browser, "launch").click()
    wait_until(browser, lambda d: "/ui/jobs/" in d.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(browser, lambda d: chart_points(d, "loss-chart") >= 2, message="no points arrived")
    seen = chart_points(browser, "loss-chart")
    wait_until(browser, lambda d: chart_points(d, "loss-chart") > seen, message="the curve did not grow")
    assert text_of(browser, "job-status") == "running" or chart_points(browser, "accuracy-chart") > 0
    wait_until(browser, lambda d: text_of(d, "job-status") == "succeeded", timeout=240)

    # the confusion matrix of the chosen (latest) epoch is the API's
    metrics = api.get(f"/jobs/{job_id}/metrics", params={"confusion_matrix": "true"}).json()
    want = metrics["val"][-1]["confusion_matrix"]
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=confusion-matrix] tbody tr"))
    rows = by_testid(browser, "confusion-matrix").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [[int(td.text) for td in row.find_elements(By.TAG_NAME, "td")] for row in rows] == want
    assert (
        chart_points(browser, "accuracy-chart") == 2 * (len(metrics["train"]) + len(metrics["val"])) // 2 * 1
    )

    # the misclassified images are the API's wrong predictions, as loaded thumbnails
    wrong = sum(
        api.get(f"/jobs/{job_id}/predictions", params={"split": s, "wrong_only": "true"}).json()["count"]
        for s in ("val", "test")
    )
    assert wrong > 0
    wait_until(
        browser, lambda d: len(by_testid(d, "misclassified").find_elements(By.TAG_NAME, "img")) == wrong
    )
    screenshot(browser, "job")

    # predict through the drop box's file input
    image = tmp_path / "cat.jpg"
    image.write_bytes(make_image(0, 4242))
    browser.get(f"{service.url}/ui/predict?job={job_id}")
    wait_until(
        browser,
        lambda d: Select(by_testid(d, "model-select")).first_selected_option.get_attribute("value") == job_id,
    )
    by_testid(browser, "image-input").send_keys(str(image))
    wait_until(
        browser, lambda d: len(by_testid(d, "predict-result").find_elements(By.CLASS_NAME, "bar")) == 2
    )
    labels = {
        td.text
        for td in by_testid(browser, "predict-result").find_elements(By.CSS_SELECTOR, "td:first-child")
    }
    assert labels == {"cat", "dog"}
    screenshot(browser, "predict")

    # compare it with a second job: curves overlaid, the differing option highlighted
    other = api.post("/jobs", json={"dataset_id": dataset_id, "num_epochs": 2, "batch_size": 4}).json()["id"]
    wait_until(browser, lambda d: api.get(f"/jobs/{other}").json()["status"] == "succeeded", timeout=240)
    browser.get(f"{service.url}/ui/compare?jobs={job_id},{other}")
    wait_until(browser, lambda d: chart_points(d, "compare-accuracy") == 8 + 2)
    highlighted = {row.get_attribute("data-key") for row in browser.find_elements(By.CSS_SELECTOR, "tr.diff")}
    assert {"learning_rate", "num_epochs", "batch_size"} <= highlighted and "seed" not in highlighted

    # the jobs page lists both, newest first
    browser.get(f"{service.url}/ui/")
    wait_until(
        browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=jobs] tr[data-job]")) == 2
    )
    order = [row.get_attribute("data-job") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-job]")]
    assert order == [other, job_id]
    screenshot(browser, "jobs")


def learning_rates(driver) -> list[float]:
    """The trials table's learning_rate column, top to bottom (the third column)."""
    rows = driver.find_elements(By.CSS_SELECTOR, "[data-testid=trials] tbody tr")
    return [float(row.find_elements(By.TAG_NAME, "td")[2].text) for row in rows]


def test_a_sweep_page_sorts_its_trials_and_overlays_their_curves(start_service, browser, tmp_path):
    service = start_service(workers=2)
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = api.post(
        "/datasets", files={"file": ("p.zip", class_folder_zip(tmp_path / "p.zip", per_class=6).read_bytes())}
    ).json()
    wait_for(lambda: api.get(f"/datasets/{dataset['id']}").json()["status"] == "ready")
    grid = {"learning_rate": [0.01, 1e-9], "dropout_rate": [0.2, 0.6]}
    base = {"num_epochs": 2, "batch_size": 4}
    sweep = api.post("/sweeps", json={"dataset_id": dataset["id"], "base": base, "grid": grid}).json()

    browser.get(f"{service.url}/ui/sweeps/{sweep['id']}")
    wait_until(browser, lambda d: text_of(d, "sweep-status") == "succeeded", timeout=300)
    done = api.get(f"/sweeps/{sweep['id']}").json()
    wait_until(browser, lambda d: chart_points(d, "sweep-accuracy") == 4 * 2)  # 4 trials × 2 epochs
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-testid=trials] tbody tr")
    assert len(rows) == 4
    best = browser.find_element(By.CSS_SELECTOR, "[data-testid=trials] tr.best")
    assert best.get_attribute("data-job") == done["best_job_id"]
    assert rows[0].get_attribute("data-job") == done["best_job_id"]  # sorted by accuracy, best first
    screenshot(browser, "sweep")

    # a click on a column sorts by it; a second click reverses
    element(browser, "[data-testid=trials] th[data-sort='params.learning_rate']").click()
    rates = learning_rates(browser)
    assert rates == sorted(rates) and rates[0] == 1e-9
    element(browser, "[data-testid=trials] th[data-sort='params.learning_rate']").click()
    rates = learning_rates(browser)
    assert rates == sorted(rates, reverse=True)

    # the sweeps list links to it, and a trial's page links back
    browser.get(f"{service.url}/ui/sweeps")
    element(browser, f"tr[data-sweep='{sweep['id']}'] a").click()
    wait_until(browser, lambda d: d.current_url.endswith(f"/ui/sweeps/{sweep['id']}"))
    browser.get(f"{service.url}/ui/jobs/{done['best_job_id']}")
    wait_until(browser, lambda d: f"sweep {sweep['id'][:8]}" in text_of(d, "job-sweep"))


def test_a_failed_job_shows_its_error(start_service, browser, tmp_path, service_env):
    from sqlalchemy import create_engine, text

    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = api.post(
        "/datasets", files={"file": ("p.zip", class_folder_zip(tmp_path / "p.zip", per_class=6).read_bytes())}
    ).json()
    wait_for(lambda: api.get(f"/datasets/{dataset['id']}").json()["status"] == "ready")
    job_id = api.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1}).json()["id"]
    wait_for(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "succeeded", timeout=240)
    engine = create_engine(service_env["FINETUNE_DATABASE_URL"])
    with engine.begin() as connection:  # as a diverged run leaves it
        connection.execute(
            text("UPDATE jobs SET status = 'failed', error = :error WHERE id = :id"),
            {
                "id": job_id,
                "error": "training diverged at epoch 1, step 2: try a lower learning rate than 0.001",
            },
        )
    engine.dispose()
    browser.get(f"{service.url}/ui/jobs/{job_id}")
    wait_until(browser, lambda d: text_of(d, "job-status") == "failed")
    assert "training diverged at epoch 1, step 2" in text_of(browser, "job-error")
    assert by_testid(browser, "resume").is_enabled() and not by_testid(browser, "cancel").is_enabled()


def test_with_tokens_the_page_asks_for_one_and_keeps_it_out_of_urls(start_service, browser):
    service = start_service(api_tokens='["a-long-secret-token"]')
    browser.get(f"{service.url}/ui/")
    prompt = wait_until(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "dialog[data-testid=token-prompt]")
    )[0]
    prompt.find_element(By.TAG_NAME, "input").send_keys("a-long-secret-token")
    by_testid(browser, "token-use").click()
    wait_until(browser, lambda d: "No jobs yet" in text_of(d, "jobs"))
    browser.get(f"{service.url}/ui/datasets")  # kept for the session: no second prompt
    wait_until(browser, lambda d: "No datasets yet" in text_of(d, "datasets"))
    assert not browser.find_elements(By.CSS_SELECTOR, "dialog[data-testid=token-prompt]")
    assert "secret" not in browser.current_url
    assert httpx.get(f"{service.url}/jobs").status_code == 401  # the API itself stays closed


def test_the_api_docs_work_offline(running_service, browser):
    browser.get(f"{running_service['url']}/docs")
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {el.text for el in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/jobs/{job_id}/predictions" in paths and "/datasets/{dataset_id}/images" in paths
    browser.get(f"{running_service['url']}/redoc")
    wait_until(browser, lambda d: "finetune" in d.find_element(By.TAG_NAME, "body").text)
    browser.get(f"{running_service['url']}/")
    wait_until(browser, lambda d: d.current_url.endswith("/ui/"))


def test_the_dashboard_on_the_embedded_default(browser, tmp_path, weights_file_for_service):
    """`finetune up` with SQLite and the folder broker serves the same pages."""
    from testkit.processes import start_embedded

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "bvlc_alexnet.npz").symlink_to(weights_file_for_service)
    up, base = start_embedded(data_dir, tmp_path / "up.log")
    try:
        browser.get(f"{base}/ui/datasets")
        archive = class_folder_zip(tmp_path / "pets.zip", per_class=6)
        element(browser, "[data-testid=upload-form] input[type=file]").send_keys(str(archive))
        element(browser, "[data-testid=upload-form] button").click()
        wait_until(browser, lambda d: "/ui/datasets/" in d.current_url)
        wait_until(browser, lambda d: text_of(d, "dataset-status") == "ready", message=up.output()[-2000:])
        wait_until(browser, lambda d: len(by_testid(d, "thumbnails").find_elements(By.TAG_NAME, "img")) == 6)
        browser.get(f"{base}/ui/")
        wait_until(browser, lambda d: "No jobs yet" in text_of(d, "jobs"))
    finally:
        up.stop()
