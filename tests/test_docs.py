"""The README and the docs site stay short, true and whole: their links resolve, every FINETUNE_
name they mention exists, the configuration page is the settings class, and the site builds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
USER_FILES = [README, ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *PAGES]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NAME = re.compile(r"\bFINETUNE_[A-Z0-9_]+")


def code_text() -> str:
    folders = ("model", "core", "api", "worker", "cli", "client", "testkit", "tests", "bench", ".ci")
    files = [path for folder in folders for path in (ROOT / folder).rglob("*") if path.suffix in (".py", "")]
    return "\n".join(path.read_text(errors="ignore") for path in files if path.is_file())


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 200


def test_the_readme_has_the_two_commands_and_ci_runs_the_second():
    readme = README.read_text()
    run = ".venv/bin/pip install -e . && .venv/bin/finetune up"
    tests = next(line for line in readme.splitlines() if line.endswith(".venv/bin/python -m pytest"))
    assert run in readme
    assert tests.startswith("DEBIAN_FRONTEND=noninteractive apt-get install")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
    up = subprocess.run([sys.executable, "-m", "cli.main", "up", "--help"], cwd=ROOT, capture_output=True)
    assert up.returncode == 0, up.stderr


@pytest.mark.parametrize("document", USER_FILES, ids=lambda path: path.name)
def test_every_local_link_exists(document):
    missing = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (document.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert missing == []


@pytest.mark.parametrize("document", USER_FILES, ids=lambda path: path.name)
def test_every_finetune_name_exists(document):
    """A setting, or a variable some code of ours reads (the client's FINETUNE_URL, the tests')."""
    settings = {f"FINETUNE_{name.upper()}" for name in Settings.model_fields}
    code = code_text()
    unknown = {
        name for name in NAME.findall(document.read_text()) if name not in settings and name not in code
    }
    assert unknown == set()


def test_the_configuration_page_is_the_settings_class():
    check = subprocess.run(
        [sys.executable, "scripts/settings_table.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_every_setting_has_a_description():
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_the_docs_site_builds_with_no_warning(tmp_path):
    """`--strict`: a broken link, a missing page or an unknown anchor fails the build."""
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert (tmp_path / "site" / "configuration.html").exists()  # offline: plain files, no server needed
