import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from model.exports import weights_install
from model.exports.weights import (
    PRETRAINED_SHAPES,
    WeightsError,
    check_shapes,
    read_weights,
    stored_fingerprint,
    synthetic_weights,
)
from model.exports.weights_install import install_weights, read_pickled_weights
from model.network.layout import WEIGHT_LAYERS


def save_original_layout(path, weights=None, dict_layout=False):
    """A pickled .npy in the layout of the published bvlc_alexnet.npy (or caffe-to-tensorflow's)."""
    weights = weights if weights is not None else synthetic_weights(seed=3)
    if dict_layout:
        table = {name: {"weights": k, "biases": b} for name, (k, b) in weights.items()}
    else:
        table = {name: [k, b] for name, (k, b) in weights.items()}
    np.save(path, table, allow_pickle=True)
    return path


def test_generated_file_has_the_bvlc_shapes_and_loads_memory_mapped_without_pickle(weights_file):
    weights = read_weights(weights_file)
    assert list(weights) == list(WEIGHT_LAYERS)
    for name, (kernel_shape, bias_shape) in PRETRAINED_SHAPES.items():
        assert weights[name][0].shape == kernel_shape and weights[name][1].shape == bias_shape
    assert isinstance(weights["fc6"][0], np.memmap)
    with np.load(weights_file, allow_pickle=False) as plain:  # no object arrays anywhere
        assert "fc7/kernel" in plain.files
    assert len(stored_fingerprint(weights_file)) == 64


def test_both_original_layouts_are_read_and_converted(tmp_path):
    expected = synthetic_weights(seed=3)
    for dict_layout in (False, True):
        source = save_original_layout(tmp_path / f"orig{dict_layout}.npy", expected, dict_layout)
        target, digest = install_weights(source, tmp_path / f"installed{dict_layout}.npz", trust=True)
        installed = read_weights(target)
        assert len(digest) == 64
        for name in WEIGHT_LAYERS:
            assert np.array_equal(installed[name][0], expected[name][0])


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.npy"
    np.save(path, {"conv1": [Payload(), np.zeros(96)]}, allow_pickle=True)
    with pytest.raises(WeightsError, match="asks to run posix.mkdir"):
        read_pickled_weights(path)
    with pytest.raises(WeightsError):
        install_weights(path, tmp_path / "out.npz", trust=True)
    assert not marker.exists()


def test_a_pickled_file_is_never_loaded_at_run_time(tmp_path):
    source = save_original_layout(tmp_path / "bvlc_alexnet.npy")
    with pytest.raises(WeightsError, match="pickled .npy.*finetune download-weights --from"):
        read_weights(source)


def test_an_unverified_original_needs_trust(tmp_path, monkeypatch):
    source = save_original_layout(tmp_path / "bvlc_alexnet.npy")
    with pytest.raises(WeightsError, match=r"243861814.*--trust"):
        install_weights(source, tmp_path / "a.npz")
    # with the published size (patched to this file's), a pinned SHA-256 decides
    monkeypatch.setattr(weights_install, "WEIGHTS_SIZE_BYTES", source.stat().st_size)
    with pytest.raises(WeightsError, match="SHA-256 .* expected 0{64}"):
        install_weights(source, tmp_path / "b.npz", sha256="0" * 64)
    digest = weights_install.file_sha256(source)
    monkeypatch.setenv("FINETUNE_WEIGHTS_SHA256", digest)
    target, _ = install_weights(source, tmp_path / "c.npz")
    assert read_weights(target)["fc8"][0].shape == (4096, 1000)


def test_missing_weights_say_what_to_do(tmp_path):
    from model.training.assembly import source_weights
    from model.training.spec import TrainSpec

    with pytest.raises(WeightsError, match="download-weights.*--from.*weights 'random'"):
        source_weights(TrainSpec(), tmp_path / "none.npz")
    with pytest.raises(WeightsError, match="no weights file or export at"):
        source_weights(TrainSpec(weights=str(tmp_path / "old-run" / "export")), None)


def test_unknown_layer_is_named(tmp_path):
    path = tmp_path / "odd.npy"
    np.save(path, {"conv9": [np.zeros(1), np.zeros(1)]}, allow_pickle=True)
    with pytest.raises(WeightsError, match="unknown layer 'conv9'"):
        read_pickled_weights(path)


def test_wrong_shape_names_layer_and_shapes():
    weights = {"conv2": (np.zeros((5, 5, 96, 256), np.float32), np.zeros(256, np.float32))}
    with pytest.raises(WeightsError, match=r"'conv2'.*\(5, 5, 96, 256\).*\(5, 5, 48, 256\)"):
        check_shapes(weights, 1000, ["conv2"])


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(path)


def test_download_weights_from_another_copy_honours_the_data_folder(tmp_path, monkeypatch):
    source = save_original_layout(tmp_path / "bvlc_alexnet.npy")
    monkeypatch.delenv("FINETUNE_WEIGHTS_PATH", raising=False)
    monkeypatch.setenv("FINETUNE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    refused = runner.invoke(main, ["download-weights", "--from", str(source)])
    assert refused.exit_code == 1 and "--trust" in refused.output and "weights 'random'" in refused.output
    result = runner.invoke(main, ["download-weights", "--from", str(source), "--trust"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "bvlc_alexnet.npz").is_file() and not (
        tmp_path / "data" / "bvlc_alexnet.npy"
    ).exists()


def test_download_over_http_verifies_converts_and_cleans_up(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    save_original_layout(served / "bvlc_alexnet.npy")
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        runner = CliRunner()
        target = tmp_path / "w" / "bvlc_alexnet.npz"
        result = runner.invoke(
            main, ["download-weights", "--url", f"{url}/bvlc_alexnet.npy", "--to", str(target), "--trust"]
        )
        assert result.exit_code == 0, result.output
        assert read_weights(target)["conv1"][0].shape == (11, 11, 3, 96)
        assert sorted(p.name for p in target.parent.iterdir()) == ["bvlc_alexnet.npz"]
        missing = runner.invoke(
            main, ["download-weights", "--url", f"{url}/nothing.npy", "--to", str(target)]
        )
        assert missing.exit_code == 1
        assert f"{url}/nothing.npy" in missing.output and "--from FILE" in missing.output
        assert "weights 'random'" in missing.output
    finally:
        server.shutdown()


def test_every_command_reads_dot_env_as_the_service_does(tmp_path, monkeypatch):
    """`.env` in the working folder sets FINETUNE_* for download-weights as for the settings; a
    variable set in the environment still wins."""
    from core.config import Settings

    source = save_original_layout(tmp_path / "bvlc_alexnet.npy")
    monkeypatch.delenv("FINETUNE_WEIGHTS_PATH", raising=False)
    monkeypatch.delenv("FINETUNE_DATA_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / ".env").write_text(f"FINETUNE_WEIGHTS_PATH={tmp_path / 'from-env' / 'w.npz'}\n")
    monkeypatch.chdir(work)
    result = CliRunner().invoke(main, ["download-weights", "--from", str(source), "--trust"])
    assert result.exit_code == 0, result.output
    assert (
        tmp_path / "from-env" / "w.npz"
    ).is_file() and Settings().weights_path == tmp_path / "from-env" / "w.npz"
    monkeypatch.setenv("FINETUNE_WEIGHTS_PATH", str(tmp_path / "from-environment.npz"))
    assert CliRunner().invoke(main, ["download-weights", "--from", str(source), "--trust"]).exit_code == 0
    assert (tmp_path / "from-environment.npz").is_file()
