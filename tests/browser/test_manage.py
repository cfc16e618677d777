"""Managing jobs and datasets from the pages, against the real API and workers: the job form with
every option, deleting with a confirmation, the live confusion matrix, and the token dialog."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from api.schemas.jobs import JobCreate
from testkit.images import class_folder_zip
from testkit.service import upload_and_wait, wait_for
from tests.utils.browser import accessibility_problems, by_testid, element, screenshot, text_of, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def form_field(driver, name: str):
    return element(driver, f"form[data-testid=job-form] [name={name}]")


def fill(driver, name: str, value) -> None:
    field = form_field(driver, name)
    field.clear()
    field.send_keys(str(value))


def layer_box(driver, group: str, layer: str):
    return driver.find_element(By.CSS_SELECTOR, f"[data-field={group}] input[value={layer}]")


def test_the_job_form_offers_every_option_and_launches_with_them(start_service, browser, tmp_path):
    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(api, tmp_path, per_class=6)
    browser.get(f"{service.url}/ui/datasets/{dataset['id']}")
    form = element(browser, "form[data-testid=job-form]")

    schema = JobCreate.model_json_schema()["properties"]
    offered = {name for name, prop in schema.items() if name != "dataset_id" and not prop.get("deprecated")}
    shown = {box.get_attribute("data-field") for box in form.find_elements(By.CSS_SELECTOR, ".field")}
    assert shown == offered and "mixed_precision" not in shown
    groups = [legend.text for legend in form.find_elements(By.CSS_SELECTOR, "fieldset.group > legend")]
    assert groups == ["Data", "Layers", "Optimisation", "Schedule", "Regularisation", "Hardware"]
    for name in offered - {"train_layers", "reinit_layers"}:  # each input has its label, help and default
        label = form.find_element(By.CSS_SELECTOR, f"label[for=field-{name}]")
        assert label.text == schema[name]["title"]
        assert schema[name]["description"].replace("`", "") in by_testid_help(form, name)
    assert "default 0.001" in by_testid_help(form, "learning_rate") and "up to 10" in by_testid_help(
        form, "learning_rate"
    )

    # a rule over the whole body is shown next to the field it names; nothing is launched
    layer_box(browser, "train_layers", "fc8").click()
    by_testid(browser, "launch").click()
    wait_until(browser, lambda d: text_of(d, "error-reinit_layers") != "")
    assert text_of(browser, "error-reinit_layers").startswith("reinit_layers start from random values")
    layer_box(browser, "train_layers", "fc8").click()
    # what is not a number is said so before anything is sent
    fill(browser, "learning_rate", "1e")
    by_testid(browser, "launch").click()
    wait_until(browser, lambda d: text_of(d, "error-learning_rate") == "must be a number")
    assert api.get("/jobs").json()["count"] == 0

    fill(browser, "learning_rate", 0.002)
    Select(form_field(browser, "precision")).select_by_visible_text("float32")
    Select(form_field(browser, "lr_schedule")).select_by_visible_text("cosine")
    Select(form_field(browser, "class_weight")).select_by_visible_text("balanced")
    for name, value in (("warmup_epochs", 1), ("weight_decay", 0.01), ("label_smoothing", 0.1)):
        fill(browser, name, value)
    fill(browser, "num_epochs", 2)
    fill(browser, "batch_size", 4)
    fill(browser, "name", "cosine, balanced")
    browser.execute_script("arguments[0].scrollIntoView()", form)
    screenshot(browser, "job-form")
    by_testid(browser, "launch").click()
    wait_until(browser, lambda d: "/ui/jobs/" in d.current_url)
    spec = api.get(f"/jobs/{browser.current_url.rsplit('/', 1)[1]}").json()["spec"]
    assert {k: spec[k] for k in ("learning_rate", "precision", "lr_schedule", "class_weight")} == {
        "learning_rate": 0.002,
        "precision": "float32",
        "lr_schedule": "cosine",
        "class_weight": "balanced",
    }
    assert (spec["warmup_epochs"], spec["weight_decay"], spec["label_smoothing"]) == (1, 0.01, 0.1)
    assert spec["num_epochs"] == 2 and spec["momentum"] == 0.9 and spec["early_stopping_patience"] is None
    launched = api.get(f"/jobs/{browser.current_url.rsplit('/', 1)[1]}").json()
    assert (launched["name"], launched["note"], launched["classes"]) == (
        "cosine, balanced",
        None,
        ["cat", "dog"],
    )


def by_testid_help(form, name: str) -> str:
    return form.find_element(By.ID, f"help-{name}").text


def confirm(driver, answer: str) -> str:
    """Answer the delete dialog ("keep" or "go"); returns what it said would go."""
    dialog = element(driver, "dialog[data-testid=confirm-dialog]")
    details = dialog.find_element(By.CSS_SELECTOR, "[data-testid=confirm-details]").text
    dialog.find_element(By.CSS_SELECTOR, f"[data-testid=confirm-{answer}]").click()
    wait_until(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[data-testid=confirm-dialog]"))
    return details


def test_a_running_job_shows_its_latest_confusion_matrix_then_outlives_its_dataset(
    start_service, browser, tmp_path
):
    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(api, tmp_path, per_class=5)
    job = api.post("/jobs", json={"dataset_id": dataset["id"], "num_epochs": 1000, "batch_size": 2}).json()
    browser.get(f"{service.url}/ui/jobs/{job['id']}")
    # the matrix of the latest epoch appears as the epoch ends, the selector untouched
    table = element(browser, "[data-testid=confusion-matrix]", timeout=120)
    assert [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "thead th")][1:] == ["cat", "dog"]
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "running"  # 1000 epochs: far from done
    assert not by_testid(browser, "delete-job").is_enabled()  # cancel first
    by_testid(browser, "cancel").click()
    wait_until(browser, lambda d: text_of(d, "job-status") == "cancelled")

    # named on its page
    browser.find_element(By.CSS_SELECTOR, "[data-testid=describe] summary").click()
    element(browser, "form.describe input[name=name]").send_keys("long run")
    element(browser, "form.describe textarea").send_keys("stopped on purpose")
    by_testid(browser, "describe-save").click()
    wait_until(browser, lambda d: text_of(d, "job-name") == "long run")
    assert api.get(f"/jobs/{job['id']}").json()["note"] == "stopped on purpose"

    # its dataset deleted from the list: the job keeps its class names and says where its images went
    browser.get(f"{service.url}/ui/datasets")
    element(browser, f"button[data-delete='{dataset['id']}']").click()
    assert "1 job(s) trained on it keep their models" in confirm(browser, "go")
    wait_until(browser, lambda d: "No datasets yet" in text_of(d, "datasets"))
    browser.get(f"{service.url}/ui/jobs/{job['id']}")
    table = element(browser, "[data-testid=confusion-matrix]")
    assert [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "thead th")][1:] == ["cat", "dog"]
    wait_until(browser, lambda d: "dataset was deleted" in text_of(d, "misclassified"))

    wait_until(browser, lambda d: by_testid(d, "delete-job").is_enabled())
    by_testid(browser, "delete-job").click()
    assert "checkpoints" in confirm(browser, "keep")
    assert api.get(f"/jobs/{job['id']}").status_code == 200  # kept
    by_testid(browser, "delete-job").click()
    details = confirm(browser, "go")
    assert details.endswith("B.")  # the size on disk that goes
    wait_until(browser, lambda d: d.current_url.rstrip("/").endswith("/ui"))
    assert "freed" in browser.find_element(By.ID, "message").text
    assert api.get(f"/jobs/{job['id']}").status_code == 404


def test_jobs_are_deleted_together_from_the_list(start_service, browser, tmp_path):
    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(api, tmp_path, per_class=5)
    spec = {"dataset_id": dataset["id"], "num_epochs": 1, "batch_size": 4}
    ids = [api.post("/jobs", json=spec).json()["id"] for _ in range(2)]
    wait_for(lambda: all(api.get(f"/jobs/{i}").json()["status"] == "succeeded" for i in ids), timeout=300)

    # a model download streams from the server into a file, through a one-time link
    browser.get(f"{service.url}/ui/jobs/{ids[0]}")
    wait_until(browser, lambda d: by_testid(d, "download-model").is_enabled())
    by_testid(browser, "download-model").click()
    saved = browser.download_dir / f"finetune-{ids[0]}.zip"
    wait_until(browser, lambda d: saved.is_file(), timeout=300, message="the model was not saved")
    with api.stream("GET", f"/jobs/{ids[0]}/model") as whole:
        assert saved.stat().st_size == int(whole.headers["content-length"]) > 100e6
    assert "your browser shows its progress" in browser.find_element(By.ID, "message").text

    browser.get(f"{service.url}/ui/")
    for job_id in ids:
        element(browser, f"tr[data-job='{job_id}'] input[type=checkbox]").click()
    by_testid(browser, "delete-selected").click()
    assert confirm(browser, "go").startswith("Their models, checkpoints")
    wait_until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "tr[data-job]"))
    assert "Deleted 2 of 2" in browser.find_element(By.ID, "message").text
    assert api.get("/jobs").json()["count"] == 0


def test_the_token_dialog_can_be_escaped_and_guards_uploads(start_service, browser, tmp_path):
    service = start_service(api_tokens='["a-long-secret-token"]')
    browser.get(f"{service.url}/ui/")
    prompt = element(browser, "dialog[data-testid=token-prompt]")
    assert prompt.find_element(By.CSS_SELECTOR, "label input[name=token]")  # the input has its label
    prompt.find_element(By.TAG_NAME, "input").send_keys(Keys.ESCAPE)
    wait_until(browser, lambda d: "no token given" in d.find_element(By.ID, "message").text)
    assert not browser.find_elements(By.CSS_SELECTOR, "dialog[data-testid=token-prompt]")

    # an upload with a stale token meets the same prompt, then goes through with the new one
    browser.get(f"{service.url}/ui/datasets")
    element(browser, "dialog[data-testid=token-prompt] input").send_keys("a-long-secret-token")
    by_testid(browser, "token-use").click()
    wait_until(browser, lambda d: "No datasets yet" in text_of(d, "datasets"))
    browser.execute_script("sessionStorage.setItem('finetune-token', 'a-stale-token')")
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=4)
    element(browser, "[data-testid=upload-form] input[type=file]").send_keys(str(archive))
    element(browser, "[data-testid=upload-form] button").click()
    element(browser, "dialog[data-testid=token-prompt] input").send_keys("a-long-secret-token")
    by_testid(browser, "token-use").click()
    wait_until(browser, lambda d: "/ui/datasets/" in d.current_url)


def test_every_page_passes_axe(start_service, browser, tmp_path):
    """axe-core on every page with real content: no serious or critical violation."""
    service = start_service()
    api = httpx.Client(base_url=service.url, timeout=60)
    dataset = upload_and_wait(api, tmp_path, per_class=5)
    sweep = api.post(
        "/sweeps",
        json={
            "dataset_id": dataset["id"],
            "base": {"num_epochs": 1, "batch_size": 4},
            "grid": {"dropout_rate": [0.3, 0.5]},
        },
    ).json()
    wait_for(lambda: api.get(f"/sweeps/{sweep['id']}").json()["status"] == "succeeded", timeout=300)
    jobs = [trial["job_id"] for trial in api.get(f"/sweeps/{sweep['id']}").json()["trials"]]
    pages = {
        "/ui/": "[data-testid=jobs] tr[data-job]",
        f"/ui/jobs/{jobs[0]}": "[data-testid=confusion-matrix]",
        "/ui/datasets": "[data-testid=datasets] button[data-delete]",
        f"/ui/datasets/{dataset['id']}": "form[data-testid=job-form]",
        "/ui/new-job": "form[data-testid=job-form]",
        "/ui/predict": "main h1",
        f"/ui/compare?jobs={jobs[0]},{jobs[1]}": "[data-testid=compare-specs] tr",
        "/ui/sweeps": "[data-testid=sweeps] tr[data-sweep]",
        f"/ui/sweeps/{sweep['id']}": "[data-testid=trials] tr.trial",
    }
    problems = {}
    for path, ready in pages.items():
        browser.get(f"{service.url}{path}")
        element(browser, ready, timeout=60)
        problems[path] = accessibility_problems(browser)
    by_testid(browser, "delete-sweep").click()  # a dialog open over the page
    element(browser, "dialog[data-testid=confirm-dialog]")
    problems["delete dialog"] = accessibility_problems(browser)
    failing = [f"{path}: {problem}" for path, found in problems.items() for problem in found]
    assert failing == [], "\n".join(failing)
