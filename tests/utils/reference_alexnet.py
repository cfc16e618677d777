"""An independent numpy implementation of Caffe's bvlc_alexnet deploy definition (float64)."""

from __future__ import annotations

import numpy as np


def conv2d(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, pad: int, groups: int
) -> np.ndarray:
    """x (H, W, C), kernel (kh, kw, C/groups, out): Caffe's grouped convolution via im2col."""
    if pad:
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw, cin_g, cout = kernel.shape
    out_h = (x.shape[0] - kh) // stride + 1
    out_w = (x.shape[1] - kw) // stride + 1
    cout_g = cout // groups
    outputs = []
    for g in range(groups):
        xg = x[:, :, g * cin_g : (g + 1) * cin_g]
        windows = np.lib.stride_tricks.sliding_window_view(xg, (kh, kw), axis=(0, 1))[::stride, ::stride]
        # windows: (out_h, out_w, cin_g, kh, kw) → (out_h·out_w, kh·kw·cin_g)
        columns = windows.transpose(0, 1, 3, 4, 2).reshape(out_h * out_w, kh * kw * cin_g)
        weights = kernel[:, :, :, g * cout_g : (g + 1) * cout_g].reshape(kh * kw * cin_g, cout_g)
        outputs.append(columns @ weights)
    return (np.concatenate(outputs, axis=1) + bias).reshape(out_h, out_w, cout)


def lrn(
    x: np.ndarray, local_size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> np.ndarray:
    """Caffe ACROSS_CHANNELS: x / (k + alpha/n · Σ x²)^beta over n neighbouring channels."""
    half = local_size // 2
    squared = np.pad(x**2, ((0, 0), (0, 0), (half, half)))
    window = sum(squared[:, :, i : i + x.shape[2]] for i in range(local_size))
    return x / (k + alpha / local_size * window) ** beta


def maxpool(x: np.ndarray, size: int = 3, stride: int = 2) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(0, 1))[::stride, ::stride]
    return windows.max(axis=(3, 4))


def forward(image_bgr: np.ndarray, weights: dict) -> np.ndarray:
    """Logits for one mean-subtracted BGR image (227, 227, 3)."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    w = {name: (k.astype(np.float64), b.astype(np.float64)) for name, (k, b) in weights.items()}
    x = image_bgr.astype(np.float64)
    x = maxpool(lrn(relu(conv2d(x, *w["conv1"], stride=4, pad=0, groups=1))))
    x = maxpool(lrn(relu(conv2d(x, *w["conv2"], stride=1, pad=2, groups=2))))
    x = relu(conv2d(x, *w["conv3"], stride=1, pad=1, groups=1))
    x = relu(conv2d(x, *w["conv4"], stride=1, pad=1, groups=2))
    x = maxpool(relu(conv2d(x, *w["conv5"], stride=1, pad=1, groups=2)))
    x = x.reshape(-1)  # HWC order, 9216
    x = relu(x @ w["fc6"][0] + w["fc6"][1])
    x = relu(x @ w["fc7"][0] + w["fc7"][1])
    return x @ w["fc8"][0] + w["fc8"][1]
