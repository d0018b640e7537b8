"""The `digitrec` command: parses arguments, builds settings, calls the library.

Commands import what they need when they run, so `digitrec predict` never loads torch.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import __version__
from .errors import DigitrecError


def _train(args) -> int:
    from .config import DEFAULT_PRESET, preset
    from .train import fit, resume_config

    out = Path(args.out or f"runs/{args.preset or DEFAULT_PRESET}")
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    if args.dry_run:
        overrides.update(epochs=1, limit=2 * (args.batch_size or 128))
    elif args.limit:
        overrides["limit"] = args.limit
    if args.resume:
        cfg = resume_config(out, epochs=args.epochs)
    else:
        cfg = preset(args.preset or DEFAULT_PRESET, **overrides)
    command = "digitrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path, card = fit(
        cfg,
        out,
        data_dir=args.data_dir,
        device=args.device,
        resume=args.resume,
        force=args.force,
        progress=not args.quiet,
        command=command,
    )
    m = card["metrics"]
    print(
        f"saved {path} (epoch {m['epochs']}): validation {100 * m['val_accuracy']:.2f}%, "
        f"MNIST test {100 * m['test_accuracy']:.2f}%, {card['training_seconds']:.0f} s"
    )
    return 130 if card.get("interrupted") else 0


def _export(args) -> int:
    from .export import export_checkpoint

    out = Path(args.out) if args.out else Path(args.model).with_suffix(".onnx")
    path, diff = export_checkpoint(args.model, out, force=args.force)
    print(f"wrote {path}; parity with PyTorch: max |logit difference| = {diff:.2e}")
    return 0


def _describe(name: str, r: dict) -> str:
    """One human line for a predict or read-number result."""
    if "number" in r:
        if not r["digits"]:
            return f"{name}: refused - the picture is blank"
        digits = ", ".join(
            f"{d['digit'] if not d['refused'] else '?'} {100 * d['confidence']:.1f}%"
            for d in r["digits"]
        )
        lines = r["number"].replace("\n", " / ")  # several lines of digits on one line
        return f"{name}: {lines}  ({digits})"
    if r["refused"]:
        guess = (
            f" (best guess {r['digit']}, {100 * r['confidence']:.1f}%)"
            if r["digit"] is not None
            else ""
        )
        return f"{name}: refused - {r['message']}{guess}"
    top = ", ".join(f"{t['digit']} {100 * t['probability']:.1f}%" for t in r["top3"])
    return f"{name}: {r['digit']} ({100 * r['confidence']:.1f}%)  top 3: {top}"


def _predict(args) -> int:
    from .inference import Predictor

    predictor = Predictor(args.model, threshold=args.threshold)
    results, failed, refused = [], 0, 0
    for name in args.images:
        try:
            answer = predictor.read_number(name) if args.number else predictor.predict(name)
        except DigitrecError as e:
            # One bad picture should not hide the answers for the others.
            failed += 1
            message = str(e) if name in str(e) else f"{name}: {e}"
            results.append({"image": name, "error": message})
            continue
        refused += answer.refused
        results.append({"image": name, **answer.to_dict()})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"digitrec: error: {r['error']}", file=sys.stderr)
            else:
                print(_describe(r["image"], r))
    # 0: every picture read; 1: some refused (an answer, not an error); 2: some unreadable
    return 2 if failed else 1 if refused else 0


def _evaluate(args) -> int:
    from .evaluate import evaluate_folder, evaluate_mnist, write_report
    from .inference import Predictor

    predictor = Predictor(args.model)
    if args.images:
        result = evaluate_folder(predictor, args.images, progress=not args.json)
    else:
        result = evaluate_mnist(predictor, args.data_dir, progress=not args.json)
    if args.report:
        write_report(result, args.report)
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.text())
        if args.report:
            print(f"report written to {args.report}")
    return 0


def _info(args) -> int:
    from .cards import summary
    from .inference import Predictor

    predictor = Predictor(args.model)
    if args.json:
        print(json.dumps(predictor.card, indent=2))
    else:
        print(f"file       {predictor.path}")
        print(summary(predictor.card))
    return 0


def _data_download(args) -> int:
    from .data import download_mnist

    folder = download_mnist(args.data_dir, progress=True)
    print(f"MNIST is ready in {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitrec", description="Recognise handwritten digits; train CNNs on MNIST."
    )
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = "a .onnx or .safetensors model (default: $DIGITREC_MODEL, else the bundled one)"
    data_help = "folder of the four MNIST files (default: $DIGITREC_DATA, else the user cache)"

    p = sub.add_parser("train", help="train a CNN on MNIST and write a checkpoint")
    p.add_argument("--preset", help="recipe: seed, fast or best (default: best)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the preset's)")
    p.add_argument("--seed", type=int, help="random seed; the same seed repeats a run")
    p.add_argument("--data-dir", help=data_help)
    p.add_argument("--out", help="output folder (default: runs/<preset>)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--resume", action="store_true", help="continue a stopped run in --out")
    p.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--dry-run", action="store_true", help="one short epoch, to check the setup")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", help="accuracy of a model on MNIST's test set or a folder")
    p.add_argument("--model", help=model_help)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data-dir", help=data_help)
    src.add_argument("--images", help="a folder dataset laid out as DIR/<digit>/*.png|jpg")
    p.add_argument("--json", action="store_true", help="print machine-readable results only")
    p.add_argument("--report", help="write a confusion matrix and error grid (PNG) here")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser(
        "predict",
        help="read the digit (or, with --number, the digits) in each picture",
        description="Exit status: 0 all read, 1 some refused (blank, not a digit, unsure), "
        "2 some pictures could not be read.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or WebP files")
    p.add_argument("--model", help=model_help)
    p.add_argument("--number", action="store_true", help="read every digit, left to right")
    p.add_argument(
        "--threshold",
        type=float,
        help="refuse answers less confident than this (default: the model's calibrated one)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable results only")
    p.set_defaults(run=_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it against PyTorch")
    p.add_argument("--model", required=True, help="a .safetensors checkpoint")
    p.add_argument("--out", help="the .onnx file (default: beside the checkpoint)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=_export)

    p = sub.add_parser("info", help="show a model's card")
    p.add_argument("--model", help=model_help)
    p.add_argument("--json", action="store_true", help="print the whole card as JSON")
    p.set_defaults(run=_info)

    p = sub.add_parser("data", help="manage the MNIST files")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = data_sub.add_parser("download", help="fetch MNIST into the data folder, checked")
    d.add_argument("--data-dir", help=data_help)
    d.set_defaults(run=_data_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
