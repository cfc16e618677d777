"""The layering is kept by the build, not by habit: `lint-imports` checks the contracts in
pyproject.toml (cli → api | worker → core → model; the engine's four rooms; model and client
import nothing of ours; reading settings imports no engine; benchmarks import no test code)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(__import__("sys").executable).parent))
    assert lint is not None, "import-linter is not installed: pip install -e '.[test]'"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
