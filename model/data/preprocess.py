"""The one definition of how an image becomes network input, for training and prediction alike.

Two halves, both driven by a `PreprocessSpec` that is stored with every dataset and every export:
`load_image` decodes and resizes in Python (done once per image when a dataset is prepared, and per
request at prediction), and `ImageNormalization` is the first layer of the network itself, so the
mean subtraction and the RGB→BGR swap travel inside the exported graph and cannot drift.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, ImageOps

# Decompression bombs: images above this many pixels are refused from their header, before any
# decoding (100 MP: every camera and phone photo, not a 20,000 × 20,000 PNG of a few KB).
MAX_IMAGE_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = None  # the check below is ours, exact and made before decoding

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)


class ImageError(ValueError):
    """An image that cannot be used, with the reason in words a user understands."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw images are turned into network input; saved as `preprocess.json`."""

    image_size: int = 227
    resize: Literal["squash", "center_crop"] = "squash"
    mean_rgb: tuple[float, float, float] = IMAGENET_MEAN_RGB
    channel_order: Literal["BGR", "RGB"] = "BGR"
    # Decode JPEGs at the smallest 1/2, 1/4 or 1/8 scale (DCT scaling) that still covers the size
    # the resize needs: a 12 MP photo decodes several times faster, at a mean difference under one
    # grey level. Specs stored without it (older datasets and exports) keep the full decode.
    jpeg_draft: bool = True

    def __post_init__(self) -> None:
        if self.resize not in ("squash", "center_crop"):
            raise ValueError(f"resize must be 'squash' or 'center_crop'. Received: resize={self.resize!r}")
        if self.channel_order not in ("BGR", "RGB"):
            raise ValueError(f"channel_order must be 'BGR' or 'RGB'. Received: {self.channel_order!r}")
        if len(self.mean_rgb) != 3:
            raise ValueError(f"mean_rgb needs three values. Received: {self.mean_rgb!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        return cls(
            **{"jpeg_draft": False, **data, "mean_rgb": tuple(data.get("mean_rgb", IMAGENET_MEAN_RGB))}
        )

    def save(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> PreprocessSpec:
        return cls.from_dict(json.loads(path.read_text()))


def load_image(
    source: bytes | np.ndarray | Image.Image, spec: PreprocessSpec, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Decode any supported image into a uint8 RGB array of shape (size, size, 3).

    Accepts encoded bytes (JPEG, PNG, BMP, GIF's first frame, WebP), a PIL image, or an array
    (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) in RGB order. Raises `ImageError` with a reason;
    an image of more than `max_pixels` pixels is refused before it is decoded.
    """
    image = _to_pil(source, max_pixels, _draft_side(spec))
    image = _to_rgb(image)  # orientation after the draft: both sides cover what the resize needs
    return _resize(image, spec)


def _draft_side(spec: PreprocessSpec) -> int | None:
    """The side both image dimensions must keep after a JPEG draft, or None for a full decode."""
    if not spec.jpeg_draft:
        return None
    return 256 * spec.image_size // 227 if spec.resize == "center_crop" else spec.image_size


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}×{height} is {width * height:,} pixels; the limit is {max_pixels:,}"
        )


def _to_pil(
    source: bytes | np.ndarray | Image.Image, max_pixels: int, draft_side: int | None = None
) -> Image.Image:
    if isinstance(source, Image.Image):
        _check_pixels(*source.size, max_pixels)
        return source
    if isinstance(source, np.ndarray):
        return _array_to_pil(source)
    if not source:
        raise ImageError("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(source))  # reads the header only
        _check_pixels(*image.size, max_pixels)
        image.seek(0)  # GIF and other animations: the first frame
        if draft_side and image.format == "JPEG":
            image.draft(image.mode, (draft_side, draft_side))
        image.load()
    except ImageError:
        raise
    except Image.UnidentifiedImageError as exc:
        raise ImageError("not an image in a supported format (JPEG, PNG, BMP, GIF, WebP, TIFF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, OSError) and "truncated" in str(exc).lower():
            raise ImageError("truncated image file") from exc
        raise ImageError(f"not a readable image ({exc.__class__.__name__}: {exc})") from exc
    return image


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}")
    if array.dtype != np.uint8:
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 255):
            raise ImageError("array values must lie in 0..255")
        array = np.nan_to_num(array).astype(np.uint8)
    return Image.fromarray(array)


def _upright(image: Image.Image) -> Image.Image:
    """The image as displayed (EXIF or XMP orientation applied), itself when it needs no turn:
    `exif_transpose` returns a copy then, a cost on every small image."""
    try:
        if image.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
            return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is no reason to reject the pixels
        pass
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    image = _upright(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _resize(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    size = spec.image_size
    if image.width < 1 or image.height < 1:
        raise ImageError("image has no pixels")
    if spec.resize == "center_crop":
        shorter = 256 * size // 227
        scale = shorter / min(image.width, image.height)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    else:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def normalize(images: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The numpy twin of `ImageNormalization`, for reference implementations and tests."""
    out = images.astype(np.float32) - np.asarray(spec.mean_rgb, dtype=np.float32)
    return out[..., ::-1] if spec.channel_order == "BGR" else out
