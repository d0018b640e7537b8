"""Every command through the installed `digitrec` script, as a user runs it."""

import functools
import http.server
import json
import shutil
import threading

import pytest
from helpers import EXAMPLES, example_pictures, run_cli
from PIL import Image

from digitrec import __version__
from digitrec.data import MNIST_FILES


def one_clear_error(result, *fragments):
    """Exit status 2 and a single `digitrec: error:` line that names what went wrong."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("digitrec: error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"digitrec {__version__}"


def test_help_lists_every_command():
    out = run_cli("--help").stdout
    for command in ("train", "evaluate", "predict", "export", "info", "data"):
        assert command in out


def test_predict_reads_the_sample_pictures():
    pictures = example_pictures()
    result = run_cli("predict", *[p for p, _ in pictures])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(pictures)
    for line, (path, label) in zip(lines, pictures, strict=True):
        assert line.startswith(f"{path}: {label} ("), line
        assert "top 3:" in line


def test_predict_json_is_machine_readable():
    path, label = example_pictures()[3]
    result = run_cli("predict", path, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["digit"] == label and data["image"] == str(path)
    assert abs(sum(data["probabilities"]) - 1) < 1e-4
    assert [t["digit"] for t in data["top3"]][0] == label


def test_predict_reports_bad_pictures_but_still_reads_the_good_ones(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    good, label = example_pictures()[1]
    result = run_cli("predict", good, blank, tmp_path / "missing.png")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{good}: {label}")
    assert lines[1] == f"{blank}: refused - the picture is blank"
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"digitrec: error: {tmp_path / 'missing.png'}: no such file"


def test_predict_of_many_files_answers_each_in_its_place(tmp_path):
    # 71 files: a batch that is shared with a reading process where there are two cores
    pictures = example_pictures() * 7
    missing = tmp_path / "missing.png"
    files = [p for p, _ in pictures]
    files.insert(33, missing)
    result = run_cli("predict", *files, "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data[33] == {"image": str(missing), "error": f"{missing}: no such file"}
    rest = data[:33] + data[34:]
    assert [d["image"] for d in rest] == [str(p) for p, _ in pictures]
    assert [d["digit"] for d in rest] == [label for _, label in pictures]


@pytest.mark.parametrize(
    "content, fragment",
    [(b"hello, I am text", "not a picture"), (b"\x89PNG\r\n\x1a\n\x00\x00", "notes.png")],
)
def test_predict_refuses_files_that_are_not_pictures(tmp_path, content, fragment):
    bad = tmp_path / "notes.png"
    bad.write_bytes(content)
    one_clear_error(run_cli("predict", bad), "notes.png", fragment)


def test_blank_picture_is_refused_as_an_answer_not_an_error(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (280, 280), "white").save(blank)
    result = run_cli("predict", blank)
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.strip() == f"{blank}: refused - the picture is blank"
    data = json.loads(run_cli("predict", blank, "--json").stdout)
    assert data["refused"] is True and data["reason"] == "blank" and data["digit"] is None


def test_predict_number_reads_every_digit_left_to_right():
    pictures = sorted((EXAMPLES / "numbers").glob("*.png"))
    assert len(pictures) == 2
    result = run_cli("predict", "--number", *pictures)
    assert result.returncode == 0, result.stderr
    for line, path in zip(result.stdout.splitlines(), pictures, strict=True):
        assert line.startswith(f"{path}: {path.stem}  (")
    data = json.loads(run_cli("predict", "--number", "--json", pictures[1]).stdout)
    assert data["number"] == pictures[1].stem and data["refused"] is False
    boxes = [d["box"] for d in data["digits"]]
    assert len(boxes) == len(pictures[1].stem)
    assert all(a[2] <= b[0] for a, b in zip(boxes, boxes[1:], strict=False))  # left to right


def test_predict_number_says_why_a_dash_is_no_number(tmp_path):
    dash = tmp_path / "dash.png"
    picture = Image.new("L", (200, 120), 255)
    picture.paste(0, (50, 56, 150, 64))
    picture.save(dash)
    result = run_cli("predict", "--number", dash)
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.strip() == f"{dash}: refused - this does not look like a digit"


def test_threshold_one_refuses_what_the_model_is_not_certain_of(tmp_path):
    path, _ = example_pictures()[0]  # read at 99.998%: short of certain
    data = json.loads(run_cli("predict", path, "--json", "--threshold", "1").stdout)
    assert data["refused"] is True and data["digit"] == 0
    assert data["reason"] in ("unsure", "not_a_digit")


def test_commands_refuse_files_that_are_not_digitrec_models(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model at all")
    path, _ = example_pictures()[0]
    one_clear_error(run_cli("predict", path, "--model", fake), "not a digitrec model")
    one_clear_error(run_cli("info", "--model", fake), "not a digitrec model")
    one_clear_error(run_cli("predict", path, "--model", tmp_path / "nope.onnx"), "does not exist")


def test_info_shows_the_bundled_card():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert "MNIST test" in result.stdout and "default.onnx" in result.stdout
    card = json.loads(run_cli("info", "--json").stdout)
    assert card["format"] == "digitrec-model/1"
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    # what it learned from, with licences, and its refusal rule, in the card's own numbers
    assert "UNIPEN train_r01_v07 (CC BY 4.0)" in lines["data"]
    assert "MNIST (CC BY-SA 3.0)" in lines["data"]
    rule = card["calibration"]
    assert f"under {rule['threshold']:.3f} confident" in lines["refusal"]
    assert f"within {rule['tie_margin']:.3f}" in lines["refusal"]
    look = rule["second_look"]
    assert (
        f"under {look['below']:.3f} confident: reads {len(look['views'])} more views"
        in (lines["second"])
    )


def test_evaluate_mnist_json_and_report(tmp_path, mnist_dir, tiny_onnx, tiny_run):
    report = tmp_path / "report"
    result = run_cli(
        "evaluate", "--model", tiny_onnx, "--data-dir", mnist_dir, "--json", "--report", report
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 10000
    # what the Predictor answers: with a second look at its unsure answers, as the card says
    looked = tiny_run[1]["metrics"]["test_accuracy_second_look"]
    assert data["accuracy"] == pytest.approx(looked, abs=1e-4)
    assert set(data["per_class"]) == {str(d) for d in range(10)}
    assert all(0.5 < c["recall"] <= 1 for c in data["per_class"].values())
    for name in ("confusion.png", "errors.png"):
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    wrong = round((1 - data["accuracy"]) * 10000)
    assert Image.open(report / "errors.png").height >= 72 * min(1, wrong)


def test_evaluate_images_folder(tmp_path):
    for path, label in example_pictures():
        (tmp_path / str(label)).mkdir()
        shutil.copy(path, tmp_path / str(label) / path.name)
    result = run_cli("evaluate", "--images", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "accuracy 100.00% of 10" in result.stdout
    data = json.loads(run_cli("evaluate", "--images", tmp_path, "--json").stdout)
    assert data["accuracy"] == 1.0 and data["n"] == 10


def test_evaluate_never_writes_a_report_over_another_without_force(tmp_path):
    images = tmp_path / "images"
    for path, label in example_pictures():
        (images / str(label)).mkdir(parents=True)
        shutil.copy(path, images / str(label) / path.name)
    report = tmp_path / "report"
    first = run_cli("evaluate", "--images", images, "--report", report)
    assert first.returncode == 0, first.stderr
    kept = {p.name: p.read_bytes() for p in report.iterdir()}
    (report / "notes.txt").write_text("mine")
    one_clear_error(
        run_cli("evaluate", "--images", images, "--report", report), "use --force to write"
    )
    assert {p.name: p.read_bytes() for p in report.iterdir() if p.name != "notes.txt"} == kept
    forced = run_cli("evaluate", "--images", images, "--report", report, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (report / "notes.txt").read_text() == "mine"
    assert json.loads((report / "summary.json").read_text())["n"] == 10


def test_evaluate_refuses_a_folder_with_no_digit_folders(tmp_path):
    one_clear_error(run_cli("evaluate", "--images", tmp_path), "no pictures in digit folders")


def test_corrupted_data_folder_names_the_file(tmp_path, mnist_dir):
    for name in MNIST_FILES:
        shutil.copy(mnist_dir / f"{name}.gz", tmp_path / f"{name}.gz")
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:-200])
    one_clear_error(run_cli("evaluate", "--data-dir", tmp_path), "t10k-labels-idx1-ubyte")
    broken.unlink()
    one_clear_error(
        run_cli("evaluate", "--data-dir", tmp_path), "no t10k-labels-idx1-ubyte", "--data-dir"
    )


def test_train_refuses_an_unknown_preset(tmp_path):
    one_clear_error(run_cli("train", "--preset", "huge", "--out", tmp_path), "unknown preset")


def test_train_dry_run_then_export_then_predict(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = run_cli(
        "train", "--preset", "fast", "--dry-run", "--out", out, "--data-dir", mnist_dir, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert "saved" in result.stdout and (out / "model.safetensors").is_file()
    card = json.loads((out / "model.json").read_text())
    assert card["command"].startswith("digitrec train --preset fast --dry-run")
    again = run_cli("train", "--preset", "fast", "--dry-run", "--out", out, "--quiet")
    one_clear_error(again, "exists", "--force")
    exported = run_cli("export", "--model", out / "model.safetensors")
    assert exported.returncode == 0, exported.stderr
    assert "parity" in exported.stdout and (out / "model.onnx").is_file()
    path, _ = example_pictures()[0]
    predicted = run_cli("predict", path, "--model", out / "model.onnx", "--json")
    assert predicted.returncode == 0 and json.loads(predicted.stdout)["digit"] in range(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_data_download_fetches_and_checks_mnist_from_a_mirror(tmp_path, mnist_dir):
    """A real download of the real files, from a server on 127.0.0.1 (no network needed)."""
    handler = functools.partial(_QuietHandler, directory=str(mnist_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address
        mirrors = f"http://{host}:{port}/missing/,http://{host}:{port}/"
        target = tmp_path / "cache"
        env = {"DIGITREC_MNIST_MIRRORS": mirrors, "NO_PROXY": "*", "no_proxy": "*"}
        result = run_cli("data", "download", "--data-dir", target, env=env)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)
    assert "MNIST is ready" in result.stdout


def test_data_download_without_network_says_what_to_do(tmp_path):
    env = {"DIGITREC_MNIST_MIRRORS": "http://127.0.0.1:9/"}
    result = run_cli("data", "download", "--data-dir", tmp_path / "cache", env=env)
    one_clear_error(result, "could not download", "--data-dir")
    assert not list((tmp_path / "cache").iterdir())
