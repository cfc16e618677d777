"""Write docs/configuration.md from the settings class, so the page cannot drift from the code.

python scripts/settings_table.py          # rewrite the page
python scripts/settings_table.py --check  # exit 1 when the page is out of date (the tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from core.config import Settings

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

HEADER = """# Configuration

Every setting is an environment variable with the `FINETUNE_` prefix, or a line in a `.env` file in
the working directory (the environment wins). They are defined in one class, `core/config.py`;
this page is generated from it by `python scripts/settings_table.py`, and a test fails when the
two differ.

| Variable | Default | Meaning |
|---|---|---|
"""

FOOTER = """
## Read by the engine's commands

`finetune train` and `finetune download-weights` read `FINETUNE_DATA_DIR` and
`FINETUNE_WEIGHTS_PATH` too. `finetune download-weights` also reads `FINETUNE_WEIGHTS_SHA256`: the
SHA-256 the original `bvlc_alexnet.npy` must have.

## TensorFlow's own settings

`finetune`, the workers and the API set two of TensorFlow's variables before it starts, unless you
set them (`model/network/cpu_kernels.py`):

| Variable | Set to | Meaning |
|---|---|---|
| `TF_ENABLE_ONEDNN_OPTS` | `1` on x86 | oneDNN's CPU kernels; TensorFlow alone turns them on only \
on x86 CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX. `0` keeps its Eigen kernels |
| `TF_CPU_ALLOCATOR_USE_BFC` | `true` | TensorFlow's pooling allocator on the CPU, which keeps \
the memory it took and reuses it; `false` keeps its default allocator |

The fast kernels compiled by XLA are kept in `FINETUNE_DATA_DIR/compiled/tf-<version>`;
`TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=...` names another folder.
"""

UNITS = ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))


def shown_default(name: str, field) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    value = field.default
    if value is PydanticUndefined or value is None or value == "":
        return {
            "database_url": "SQLite in the data folder",
            "broker_url": "a folder broker in the data folder",
            "weights_path": "`bvlc_alexnet.npz` in the data folder",
        }.get(name, "none")
    if name.endswith("_bytes"):
        for size, unit in UNITS:
            if value % size == 0:
                return f"{value // size} {unit}"
    if isinstance(value, Path):
        return f"`./{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else f"{value:g}"


def render() -> str:
    rows = [
        f"| `FINETUNE_{name.upper()}` | {shown_default(name, field)} | {field.description} |"
        for name, field in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n" + FOOTER


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(
            0
            if PAGE.read_text() == render()
            else "docs/configuration.md is out of date: run python scripts/settings_table.py"
        )
    PAGE.write_text(render())
