import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from testkit.images import class_folder_zip, make_image

ROOT = Path(__file__).resolve().parents[2]


def test_train_then_predict_on_local_files(tmp_path, weights_file):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=8)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "train",
            str(archive),
            "--out",
            str(tmp_path / "out"),
            "--weights-file",
            str(weights_file),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--val-fraction",
            "0.25",
            "--test-fraction",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "best epoch 1" in result.output and "export:" in result.output
    image = tmp_path / "cat.png"
    image.write_bytes(make_image(0, 99, fmt="PNG"))
    result = runner.invoke(
        main, ["predict", str(tmp_path / "out" / "run" / "export"), str(image), "--top-k", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)[0]["predictions"]
    assert [p["label"] for p in predictions] in (["cat", "dog"], ["dog", "cat"])
    assert abs(sum(p["probability"] for p in predictions) - 1) < 1e-4

    export_dir = tmp_path / "out" / "run" / "export"
    result = runner.invoke(main, ["export", str(export_dir), "--format", "tflite"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "out" / "run" / "export-tflite")
    assert (tmp_path / "out" / "run" / "export-tflite" / "model.tflite").stat().st_size > 200e6
    result = runner.invoke(main, ["export", str(tmp_path), "--format", "onnx"])
    assert result.exit_code == 1 and "is not a finetune export" in result.output


def test_bad_options_are_usage_errors(tmp_path):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=4)
    result = CliRunner().invoke(main, ["train", str(archive), "--train-layers", "fc9"])
    assert result.exit_code == 2 and "unknown layer(s) fc9" in result.output
    result = CliRunner().invoke(main, ["train", str(archive), "--learning-rate", "-1"])
    assert result.exit_code == 2 and "learning_rate" in result.output


def test_missing_weights_are_reported_before_any_decoding(tmp_path):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=6)
    common = [
        "train",
        str(archive),
        "--out",
        str(tmp_path / "o"),
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0",
    ]
    result = CliRunner().invoke(main, [*common, "--weights-file", str(tmp_path / "none.npz")])
    assert result.exit_code == 1 and "finetune download-weights" in result.output
    assert "images, classes" not in result.output and not (tmp_path / "o" / "dataset").exists()
    result = CliRunner().invoke(main, [*common, "--weights", str(tmp_path / "old-run" / "export")])
    assert (
        result.exit_code == 1
        and f"no weights file or export at {tmp_path / 'old-run' / 'export'}" in result.output
    )
    assert "download" not in result.output


def test_predict_imagenet_names_classes(tmp_path, weights_file):
    image = tmp_path / "x.jpg"
    image.write_bytes(make_image(1, 3))
    result = CliRunner().invoke(
        main,
        ["predict", "imagenet", str(image), "--weights-file", str(weights_file), "--json", "--top-k", "3"],
    )
    assert result.exit_code == 0, result.output
    from model.exports.export import imagenet_classes

    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench"
    for p in json.loads(result.output)[0]["predictions"]:
        assert names[p["class_index"]] == p["label"]


def test_a_rerun_resumes_the_same_run_and_refuses_another(tmp_path, weights_file):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=6)
    common = ["train", str(archive), "--out", str(tmp_path / "out"), "--weights-file", str(weights_file),
              "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.2", "--test-fraction", "0",
              "--no-flip"]  # fmt: skip
    first = CliRunner().invoke(main, [*common, "--patience", "1"])
    assert first.exit_code == 0, first.output
    spec_file = tmp_path / "out" / "run" / "export" / "train_spec.json"
    written = spec_file.read_text()
    other = CliRunner().invoke(main, [*common, "--optimizer", "adam"])
    assert other.exit_code == 1 and "other options" in other.output and "--restart" in other.output
    assert "optimizer 'sgd' → 'adam'" in other.output
    assert spec_file.read_text() == written  # nothing that never ran is written
    same = CliRunner().invoke(main, [*common, "--patience", "1"])
    assert same.exit_code == 0, same.output
    assert "already finished" in same.output and "using the dataset prepared earlier" in same.output
    restarted = CliRunner().invoke(main, [*common, "--optimizer", "adam", "--restart"])
    assert restarted.exit_code == 0, restarted.output
    assert json.loads(spec_file.read_text())["optimizer"] == "adam"


def test_ctrl_c_says_where_it_stopped_and_a_rerun_resumes(tmp_path, weights_file):
    """The real command in a process: progress bars, a clean stop on SIGINT, no TensorFlow log lines."""
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=10)
    command = [sys.executable, "-m", "cli.main", "train", str(archive), "--out", str(tmp_path / "out"),
               "--weights-file", str(weights_file), "--epochs", "40", "--batch-size", "2",
               "--val-fraction", "0.2", "--test-fraction", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    stderr = b""
    deadline = time.monotonic() + 120
    while b"img_s=" not in stderr:  # a training step has run
        assert time.monotonic() < deadline and process.poll() is None, stderr.decode()[-2000:]
        stderr += os.read(process.stderr.fileno(), 65536)
    process.send_signal(signal.SIGINT)
    out, rest = process.communicate(timeout=120)
    stderr = (stderr + rest).decode()
    assert process.returncode == 130, out.decode() + stderr
    assert re.search(r"stopped at epoch \d+, after step \d+; the checkpoint is saved", out.decode())
    assert "features: 100%" in stderr
    assert not re.search(r"^[IWEF]\d{4} |absl::InitializeLog|cuInit", stderr, re.M), stderr
    resumed = CliRunner().invoke(main, [*command[3:], "--epochs", "40"])
    assert resumed.exit_code == 0, resumed.output
    assert re.search(r"resuming from epoch \d+, step \d+", resumed.output)


def test_verbose_shows_tensorflow_log_lines(tmp_path, weights_file):
    image = tmp_path / "x.png"
    image.write_bytes(make_image(0, 1, fmt="PNG"))
    command = [sys.executable, "-m", "cli.main", "--verbose", "predict", "imagenet", str(image),
               "--weights-file", str(weights_file)]  # fmt: skip
    verbose = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"^[IWE]\d{4} ", verbose.stderr, re.M)
    quiet = subprocess.run(
        [*command[:3], *command[4:]], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert quiet.returncode == 0 and not re.search(r"^[IWE]\d{4} ", quiet.stderr, re.M), quiet.stderr
