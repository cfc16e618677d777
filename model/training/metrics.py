"""Classification metrics computed from logits: loss, accuracy, per-class precision/recall, confusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    per_class: list[dict]
    confusion_matrix: list[list[int]]
    num_images: int


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example softmax cross-entropy, computed stably in float64."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def evaluate_logits(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> Evaluation:
    n = len(classes)
    predictions = logits.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class = []
    for index, name in enumerate(classes):
        true_positive = int(confusion[index, index])
        predicted = int(confusion[:, index].sum())
        support = int(confusion[index].sum())
        per_class.append(
            {
                "class": name,
                "precision": true_positive / predicted if predicted else 0.0,
                "recall": true_positive / support if support else 0.0,
                "support": support,
            }
        )
    return Evaluation(
        loss=float(cross_entropy(logits, labels).mean()) if len(labels) else 0.0,
        accuracy=float((predictions == labels).mean()) if len(labels) else 0.0,
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        num_images=int(len(labels)),
    )
