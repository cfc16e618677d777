"""`finetune download-weights`: fetch or take bvlc_alexnet.npy, verify it, install the safe copy."""

from __future__ import annotations

from pathlib import Path

import click


def _default_weights() -> str:
    from model.exports.weights import default_weights_path

    return str(default_weights_path())


weights_file_option = click.option(
    "--weights-file",
    type=click.Path(path_type=Path),
    default=_default_weights,
    show_default="$FINETUNE_WEIGHTS_PATH, else $FINETUNE_DATA_DIR (or data)/bvlc_alexnet.npz",
    help="The installed pretrained weights (written by download-weights).",
)


@click.command("download-weights")
@click.option(
    "--to",
    "target",
    type=click.Path(path_type=Path),
    default=_default_weights,
    show_default="$FINETUNE_WEIGHTS_PATH, else $FINETUNE_DATA_DIR/bvlc_alexnet.npz",
)
@click.option("--url", default=None, help="Another mirror of bvlc_alexnet.npy.")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Install a bvlc_alexnet.npy you already have instead of downloading it.",
)
@click.option("--sha256", default=None, help="The SHA-256 the original file must have.")
@click.option("--trust", is_flag=True, help="Accept a file whose size or SHA-256 is not the published one.")
def download_weights(target, url, source, sha256, trust):
    """Fetch bvlc_alexnet.npy (233 MB), verify it, and install it as a pickle-free .npz."""
    from model.exports.weights import WeightsError
    from model.exports.weights_install import WEIGHTS_URL, download_weights, install_weights

    url = url or WEIGHTS_URL
    try:
        if source is not None:
            path, digest = install_weights(source, target, sha256=sha256, trust=trust)
        else:
            path, digest = _download(target, url, sha256, trust, download_weights)
    except (OSError, WeightsError) as exc:
        where = f"from {source}" if source else f"from {url}"
        raise click.ClickException(
            f"could not install the weights {where}: {exc}\n"
            "Other ways: `finetune download-weights --from FILE` with a copy you fetched elsewhere, "
            "`--url` with a mirror, or train with weights 'random' (no pretrained weights needed)."
        ) from None
    click.echo(f"installed {path} (the original's SHA-256: {digest})")


def _download(target, url, sha256, trust, download):
    from tqdm import tqdm

    bar = None

    def on_start(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="bvlc_alexnet.npy")

    try:
        return download(
            target, url, sha256=sha256, trust=trust, on_start=on_start, progress=lambda n: bar.update(n)
        )
    finally:
        if bar is not None:
            bar.close()
