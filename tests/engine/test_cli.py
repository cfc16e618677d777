import json

from click.testing import CliRunner

from cli.main import main
from tests.utils.images import class_folder_zip, make_image


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


def test_bad_options_are_usage_errors(tmp_path):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=4)
    result = CliRunner().invoke(main, ["train", str(archive), "--train-layers", "fc9"])
    assert result.exit_code == 2 and "unknown layer(s) fc9" in result.output
    result = CliRunner().invoke(main, ["train", str(archive), "--learning-rate", "-1"])
    assert result.exit_code == 2 and "learning_rate" in result.output


def test_missing_weights_file_says_how_to_download(tmp_path):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=6)
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(archive),
            "--out",
            str(tmp_path / "o"),
            "--weights-file",
            str(tmp_path / "none.npy"),
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0",
        ],
    )
    assert result.exit_code == 1 and "finetune download-weights" in result.output


def test_predict_imagenet_names_classes(tmp_path, weights_file):
    image = tmp_path / "x.jpg"
    image.write_bytes(make_image(1, 3))
    result = CliRunner().invoke(
        main,
        ["predict", "imagenet", str(image), "--weights-file", str(weights_file), "--json", "--top-k", "3"],
    )
    assert result.exit_code == 0, result.output
    from model.export import imagenet_classes

    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench"
    for p in json.loads(result.output)[0]["predictions"]:
        assert names[p["class_index"]] == p["label"]


def test_resuming_into_a_folder_of_another_run_is_a_clear_error(tmp_path, weights_file):
    archive = class_folder_zip(tmp_path / "pets.zip", per_class=6)
    common = [
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
        "0.2",
        "--test-fraction",
        "0",
        "--no-flip",
    ]
    first = CliRunner().invoke(main, [*common, "--patience", "1"])
    assert first.exit_code == 0, first.output
    other = CliRunner().invoke(main, [*common, "--optimizer", "adam"])
    assert other.exit_code == 1 and "use a new output folder" in other.output
