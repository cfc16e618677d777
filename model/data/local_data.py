"""Local datasets for `finetune train`: prepare once, reuse while the source is unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from model.data.dataset import PreparedDataset, SplitFractions, prepare_dataset
from model.data.preprocess import PreprocessSpec

SOURCE_FILE = "source.json"


def _describe(source: Path, fractions: SplitFractions, preprocess: PreprocessSpec) -> dict:
    """What the prepared store was made from: the files' sizes and times, the split and preprocessing."""
    source = source.resolve()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    stats = [[str(p.relative_to(source.parent)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    return {
        "source": str(source),
        "files": stats,
        "split": [fractions.val, fractions.test, fractions.seed],
        "preprocess": json.loads(preprocess.to_json()),
    }


def open_or_prepare(
    source: Path, out_dir: Path, fractions: SplitFractions, preprocess: PreprocessSpec
) -> tuple[PreparedDataset, bool]:
    """The prepared store of `source` and whether it was reused; a prepared store is opened as is."""
    if (source / "manifest.json").is_file():
        return PreparedDataset(source), False
    description = _describe(source, fractions, preprocess)
    record = out_dir / SOURCE_FILE
    if (out_dir / "manifest.json").is_file() and record.is_file():
        if json.loads(record.read_text()) == description:
            return PreparedDataset(out_dir), True
    dataset = prepare_dataset(source, out_dir, fractions, preprocess)
    tmp = record.with_name(SOURCE_FILE + ".tmp")
    tmp.write_text(json.dumps(description))
    os.replace(tmp, record)
    return dataset, False
