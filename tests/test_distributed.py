"""Training under torchrun: two gloo processes on the CPU, DistributedDataParallel."""

import json
import os
import subprocess
import sys
from pathlib import Path

from digitrec.training.checkpoint import load_checkpoint, weights_digest


def test_two_processes_train_one_model_and_agree_on_its_weights(tmp_path, mnist_dir):
    out = tmp_path / "ddp"
    digitrec = Path(sys.executable).parent / "digitrec"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--no-python",
        str(digitrec),
        "train",
        "--preset",
        "fast",
        "--epochs",
        "2",
        "--limit",
        "3000",
        "--device",
        "cpu",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((out / "model.json").read_text())
    ranks = card["distributed"]
    assert ranks["world_size"] == 2 and ranks["backend"] == "gloo"
    digests = ranks["rank_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    model, _ = load_checkpoint(out / "model.safetensors")
    assert weights_digest(model) == digests[0]  # what was saved is what both ranks hold
    assert card["metrics"]["val_accuracy"] > 0.85 and card["metrics"]["epochs"] == 2
    assert done.stdout.count("saved ") == 1  # one line for the run, from rank 0
