"""bfloat16 against float32 on a real dataset: the same finetune, the same seed, in one run.

The dataset is scikit-learn's handwritten digits (1,797 scans of 8×8 pixels, 10 classes; they ship
with scikit-learn, nothing is downloaded), upscaled to 64×64 PNGs in one folder per class. The
weights are the generated stand-in for bvlc_alexnet (the real file is not available here), so the
absolute accuracy says little; the point is the gap between the two precisions.

    pip install -e ".[bench]" && python -m bench.precision_accuracy --epochs 10
"""

from __future__ import annotations

import argparse
import io
import os
import time
import zipfile
from pathlib import Path

from bench.scratch import scratch_folder

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def digits_zip(path: Path) -> Path:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    with zipfile.ZipFile(path, "w") as archive:
        for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
            grey = np.uint8(np.round(pixels * (255 / 16)))
            image = Image.fromarray(grey).resize((64, 64), Image.BILINEAR).convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            archive.writestr(f"digits/{label}/{index:04d}.png", buffer.getvalue())
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--layers", default="fc7,fc8", help="The layers that train.")
    args = parser.parse_args()

    from model.data.dataset import SplitFractions, prepare_dataset
    from model.exports.weights import write_synthetic_weights
    from model.training.loop import train
    from model.training.spec import TrainSpec

    work = scratch_folder("finetune-precision-bench-")
    weights = write_synthetic_weights(work / "bvlc_alexnet.npz")
    dataset = prepare_dataset(
        digits_zip(work / "digits.zip"), work / "dataset", SplitFractions(0.15, 0.15, seed=0)
    )
    layers = args.layers.split(",")
    results = {}
    for precision in ("float32", "bfloat16"):
        spec = TrainSpec(train_layers=layers, num_epochs=args.epochs, batch_size=64, learning_rate=0.001,
                         augment_flip=False, precision=precision)  # fmt: skip
        started = time.perf_counter()
        result = train(spec, dataset, work / precision, imagenet_weights=weights, cache_dir=work / "cache")
        results[precision] = (result, time.perf_counter() - started)

    splits = {name: len(dataset.indices(name)) for name in ("train", "val", "test")}
    print(f"scikit-learn digits: {len(dataset)} images {splits}; training {', '.join(layers)} for "
          f"{args.epochs} epochs, batch 64, SGD 0.001, no flips; CPU: {os.cpu_count()} cores")  # fmt: skip
    for precision, (result, seconds) in results.items():
        print(f"{precision:9s} best val accuracy {result.best_val_accuracy:.4f} (epoch {result.best_epoch}), "
              f"test accuracy {result.test.accuracy:.4f}, {seconds:.1f} s")  # fmt: skip
    gap = results["bfloat16"][0].best_val_accuracy - results["float32"][0].best_val_accuracy
    print(f"bfloat16 − float32: {100 * gap:+.2f} points of validation accuracy (goal: within ±1)")


if __name__ == "__main__":
    main()
