from __future__ import annotations

import pytest

from tests.e2e.conftest import running_service, start_service  # noqa: F401
from tests.service.conftest import clean_tables, service_env, weights_file_for_service  # noqa: F401
from tests.utils.browser import script_errors, start_chromium


@pytest.fixture()
def browser(tmp_path):
    """A fresh headless Chromium per test; the test fails on any script error it logged."""
    driver = start_chromium(tmp_path / "chromium-profile")
    try:
        yield driver
        errors = script_errors(driver)
        assert errors == [], f"script errors in the browser: {errors}"
    finally:
        driver.quit()
