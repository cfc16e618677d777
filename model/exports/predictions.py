"""Per-image predictions of the best epoch, kept for the validation and test splits.

They answer "which images does the model get wrong, and how sure is it": the dashboard's
misclassified thumbnails and `GET /jobs/{id}/predictions` read them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

PREDICTIONS_FILE = "predictions.json"
TOP_K = 5


def top_predictions(logits: np.ndarray, rows: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> list[dict]:
    """One record per image: its dataset index, true class, and top-k (class, probability)."""
    if not len(logits):
        return []
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(k, logits.shape[1])]
    return [
        {
            "index": int(row),
            "label": int(label),
            "top": [[int(c), round(float(p[c]), 6)] for c in order],
        }
        for row, label, p, order in zip(rows, labels, probabilities, best)
    ]


def save_predictions(run_dir: Path, split: str, records: list[dict]) -> None:
    """Replace one split's records (the val records are rewritten at every new best epoch)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[split] = records
    tmp = path.with_name(PREDICTIONS_FILE + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def load_predictions(run_dir: Path) -> dict[str, list[dict]]:
    path = Path(run_dir) / PREDICTIONS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
