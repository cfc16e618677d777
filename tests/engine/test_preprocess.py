import io

import numpy as np
import pytest
from PIL import Image

from model.data.preprocess import MAX_IMAGE_PIXELS, ImageError, PreprocessSpec, load_image, normalize
from testkit.images import png_header_only

SPEC = PreprocessSpec()


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


RED = Image.new("RGB", (40, 30), (200, 10, 10))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF"])
def test_formats_decode_to_227_rgb(fmt):
    array = load_image(encode(RED, fmt), SPEC)
    assert array.shape == (227, 227, 3) and array.dtype == np.uint8
    assert array[..., 0].mean() > 150 and array[..., 1].mean() < 60


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb(mode):
    image = RED.convert(mode) if mode != "I;16" else Image.fromarray(np.full((30, 40), 40000, np.uint16))
    fmt = "JPEG" if mode == "CMYK" else "PNG" if mode != "1" else "BMP"
    array = load_image(encode(image, fmt), SPEC)
    assert array.shape == (227, 227, 3)


def test_transparent_pixels_become_white():
    array = load_image(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG"), SPEC)
    assert array.min() == 255


def test_exif_orientation_is_applied():
    tall = Image.new("RGB", (20, 40), (0, 0, 0))
    tall.paste((255, 255, 255), (0, 0, 20, 20))  # top half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    array = load_image(encode(tall, "JPEG", exif=exif), PreprocessSpec(resize="squash"))
    # displayed: 40 wide, 20 high, the white half on the right
    assert array[:, 150:].mean() > 200 and array[:, :70].mean() < 50


def test_xmp_orientation_is_applied_and_a_callers_image_is_left_as_it_is():
    tall = Image.new("RGB", (20, 40), (0, 0, 0))
    tall.paste((255, 255, 255), (0, 0, 20, 20))  # top half white
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="8"/></x:xmpmeta>'
    opened = Image.open(io.BytesIO(encode(tall, "JPEG", xmp=xmp)))
    array = load_image(opened, SPEC)
    # rotated 90° anticlockwise to display: the white half on the left
    assert array[:, :70].mean() > 200 and array[:, 150:].mean() < 50
    assert opened.size == (20, 40) and np.asarray(opened)[:20].mean() > 250


def test_an_upright_image_is_not_copied_on_the_way(monkeypatch):
    copies = []
    original = Image.Image.copy
    monkeypatch.setattr(Image.Image, "copy", lambda self: copies.append(self.size) or original(self))
    load_image(encode(RED, "JPEG"), SPEC)
    assert copies == []


def test_gif_uses_first_frame():
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    array = load_image(buffer.getvalue(), SPEC)
    assert array[..., 0].mean() > 200 and array[..., 2].mean() < 50


def test_center_crop_keeps_the_middle():
    wide = Image.new("RGB", (300, 100), (0, 0, 0))
    wide.paste((255, 255, 255), (100, 0, 200, 100))
    cropped = load_image(encode(wide, "PNG"), PreprocessSpec(resize="center_crop"))
    squashed = load_image(encode(wide, "PNG"), PreprocessSpec(resize="squash"))
    assert cropped.mean() > 200  # only the white middle third survives the crop
    assert 60 < squashed.mean() < 110


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"hello world, not an image", "not an image"),
        (encode(RED, "PNG")[:60], "truncated|not a readable|not an image"),
    ],
)
def test_broken_files_raise_image_error(data, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(data, SPEC)


def test_an_image_just_above_the_pixel_limit_is_refused_from_its_header():
    assert MAX_IMAGE_PIXELS == 100_000_000
    with pytest.raises(ImageError, match=r"10000×10001 is 100,010,000 pixels; the limit is 100,000,000"):
        load_image(png_header_only(10_000, 10_001), SPEC)
    # at the limit the header passes, and decoding (of no data) is what fails: nothing was refused early
    with pytest.raises(ImageError, match="not a readable image|truncated"):
        load_image(png_header_only(10_000, 10_000), SPEC)


def test_the_pixel_limit_is_a_parameter():
    png = encode(Image.new("RGB", (200, 200)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        load_image(png, SPEC, max_pixels=39_999)
    assert load_image(png, SPEC, max_pixels=40_000).shape == (227, 227, 3)


def test_normalize_subtracts_rgb_mean_then_swaps_to_bgr():
    pixel = np.array([[[123.68 + 1, 116.779 + 2, 103.939 + 3]]], dtype=np.float32)
    assert np.allclose(normalize(pixel, SPEC), [[[3, 2, 1]]], atol=1e-4)


def test_in_graph_normalization_equals_numpy_twin():
    from model.network.layers import image_normalization_layer

    images = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    layer_out = np.asarray(image_normalization_layer(SPEC)(images.astype(np.float32)))
    assert np.allclose(layer_out, normalize(images, SPEC), atol=1e-4)


def test_jpeg_draft_decodes_a_large_photo_at_a_reduced_scale_with_little_difference():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    photo = Image.fromarray(base).resize((2000, 1500), Image.Resampling.BICUBIC)  # smooth, like a photo
    data = encode(photo, "JPEG", quality=92)
    full = load_image(data, PreprocessSpec(jpeg_draft=False)).astype(float)
    drafted = load_image(data, PreprocessSpec()).astype(float)
    assert not np.array_equal(full, drafted)  # the draft was used
    assert np.abs(full - drafted).mean() < 2.0
    for spec in (PreprocessSpec(), PreprocessSpec(resize="center_crop")):
        assert load_image(data, spec).shape == (227, 227, 3)


def test_specs_stored_before_the_draft_keep_the_full_decode():
    assert PreprocessSpec().jpeg_draft is True
    stored = {"image_size": 227, "resize": "squash", "mean_rgb": [1, 2, 3], "channel_order": "BGR"}
    assert PreprocessSpec.from_dict(stored).jpeg_draft is False
    assert PreprocessSpec.from_dict({**stored, "jpeg_draft": True}).jpeg_draft is True
