"""The `digitrec` command: parses arguments, builds settings, calls the library.

Commands import what they need when they run, so `digitrec predict` never loads torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

from . import __version__
from .errors import DigitrecError


def _command() -> str:
    """The command line as typed, for the model card."""
    return "digitrec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _torch_run(args) -> dict:
    """What the commands that train share (TORCH_OPTIONS, --force): PyTorch's threads set,
    and the keyword arguments fit, fit_ensemble, finetune and combine_models all take."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return dict(
        data_dir=args.data_dir,
        device=args.device,
        force=args.force,
        progress=not args.quiet,
        command=_command(),
    )


def _train(args) -> int:
    from .errors import ConfigError
    from .training.config import DEFAULT_PRESET
    from .training.ensemble import fit_ensemble
    from .training.fit import fit, ranks_from_env

    name = args.preset or DEFAULT_PRESET
    if args.ensemble is not None and args.ensemble < 2:
        raise ConfigError(f"--ensemble needs at least 2 members, not {args.ensemble}")
    out = Path(args.out or f"runs/{name}" + (f"-ensemble{args.ensemble}" if args.ensemble else ""))
    cfg = _train_recipe(args, name, out)
    given = dict(resume=args.resume, pen_file=args.unipen, **_torch_run(args))
    if args.ensemble:
        path, card = fit_ensemble(cfg, args.ensemble, out, **given)
    else:
        path, card = fit(cfg, out, **given)
    m = card["metrics"]
    test = "pairs of MNIST test digits" if cfg.task == "pairs" else "MNIST test"
    if ranks_from_env().main:  # under torchrun, one line for the run, not one per process
        print(
            f"saved {path} (epoch {m['epochs']}): validation {100 * m['val_accuracy']:.2f}%, "
            f"{test} {100 * m['test_accuracy']:.2f}%, {card['training_seconds']:.0f} s"
        )
    return 130 if card.get("interrupted") else 0


def _train_recipe(args, name: str, out: Path):
    """The recipe of preset `name` as the options change it; with --resume, the stopped
    run's own."""
    from .training.config import preset
    from .training.ensemble import MEMBER_DIR
    from .training.fit import resume_config

    if args.resume:
        # an ensemble keeps its recipe in its first member until the whole of it is saved
        first = out / MEMBER_DIR.format(1)
        return resume_config(out if not args.ensemble else first, epochs=args.epochs)
    overrides = dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        pen=args.pen,
        framed=args.framed,
        teacher=args.teacher,
    )
    if args.dry_run:
        overrides.update(epochs=1, limit=2 * (args.batch_size or 128))
    elif args.limit:
        overrides["limit"] = args.limit
    return preset(name, **overrides)


def _new_model_file(args, prefix: str) -> tuple[Path, str]:
    """Where a command that makes a model writes it: --out FILE.safetensors, else
    NAME.safetensors (and .onnx) in the models folder, NAME from --name or PREFIX-<time>.
    Refuses a --name that is not a plain name, and an existing .onnx without --force."""
    import datetime as dt

    from .errors import ConfigError, OutputExistsError
    from .reading.registry import BUNDLED, looks_like_path, models_dir
    from .training.checkpoint import WEIGHTS_NAME

    if args.name is not None and (looks_like_path(args.name) or args.name in ("", BUNDLED)):
        raise ConfigError(
            f"--name {args.name!r}: give a plain name for the models folder (not a path, a "
            f"file name or {BUNDLED!r}); --out FILE.safetensors writes anywhere else"
        )
    if args.out:
        from .training.export import check_output_folder

        out = Path(args.out)
        check_output_folder(out)  # as export does: a mistyped folder is not made
        # runs/mine/model.safetensors is called mine, as `digitrec train --out runs/mine` is
        name = out.parent.name if out.name == WEIGHTS_NAME and out.parent.name else out.stem
    else:
        name = args.name or f"{prefix}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        out = models_dir() / f"{name}.safetensors"
    if out.with_suffix(".onnx").exists() and not args.force:
        raise OutputExistsError(f"{out.with_suffix('.onnx')} exists; use --force to overwrite it")
    return out, name


def _export_new_model(args, path: Path, name: str, done: str = "") -> None:
    """Write the new checkpoint's ONNX beside it and say how to read with it."""
    from .training.export import export_checkpoint

    onnx, _ = export_checkpoint(path, path.with_suffix(".onnx"), force=True)
    print(f"saved {onnx} and {path}{done}; read with it: --model {onnx if args.out else name}")


def _combine(args) -> int:
    from .reading.registry import resolve
    from .training.checkpoint import net_count
    from .training.ensemble import combine_models

    out, name = _new_model_file(args, "ensemble")
    paths = [resolve(m) for m in args.models]
    path, card = combine_models(paths, out, name=name, pen_file=args.unipen, **_torch_run(args))
    for given, entry in zip(args.models, card["ensemble"], strict=True):
        print(f"{given}: MNIST test {_percent(entry['test_accuracy'])}")
    m = card["metrics"]
    print(
        f"ensemble of {net_count(card['model'])} nets: MNIST test {_percent(m['test_accuracy'])} "
        f"(validation {_percent(m['val_accuracy'])}), {card['parameters']:,} parameters"
    )
    _export_new_model(args, path, name)
    return 0


def _finetune(args) -> int:
    from dataclasses import replace

    from .errors import ConfigError
    from .reading.predictor import resolve_model_path
    from .reading.registry import BUNDLED, bundled_path
    from .training.finetune import FinetuneConfig, finetune

    if not args.data and args.feedback is None:
        raise ConfigError("nothing to fine-tune on: give --data DIR (one or more) or --feedback")
    parent = resolve_model_path(args.parent)
    out, name = _new_model_file(args, f"{BUNDLED if parent == bundled_path() else parent.stem}-ft")
    sources = _finetune_sources(args)
    given = dict(epochs=args.epochs, holdout=args.holdout, seed=args.seed)
    cfg = replace(FinetuneConfig(), **{k: v for k, v in given.items() if v is not None})
    path, card = finetune(parent, sources, out, cfg, name=name, **_torch_run(args))
    m = card["metrics"]
    new = sum(s["samples"] for s in card["data"]["sources"])
    print(f"new samples: {new} ({m['heldout_n']} held out to measure, the rest learned)")
    print(
        f"held-out new samples: {_percent(m['heldout_accuracy_before'])} -> {_percent(m['heldout_accuracy'])}"
    )
    print(
        f"MNIST test:           {_percent(m['test_accuracy_before'])} -> {_percent(m['test_accuracy'])}"
    )
    _export_new_model(args, path, name, f" ({card['training_seconds']:.0f} s of fine-tuning)")
    return 0


def _finetune_sources(args) -> list:
    """The new samples --data and --feedback name; the pictures left out are named."""
    from .training.finetune import feedback_source, folder_source

    sources = [folder_source(d) for d in args.data or []]
    if args.feedback is not None:
        from .feedback import default_db_path

        sources.append(feedback_source(args.feedback or default_db_path()))
    for s in sources:
        for problem in s.skipped:
            print(f"digitrec: skipped {problem}", file=sys.stderr)
    return sources


def _export(args) -> int:
    from .training.export import export_checkpoint

    out = Path(args.out) if args.out else Path(args.model).with_suffix(".onnx")
    path, diff = export_checkpoint(args.model, out, force=args.force)
    print(f"wrote {path}; parity with PyTorch: max |logit difference| = {diff:.2e}")
    return 0


def _describe(name: str, r: dict) -> str:
    """One human line for a predict or read-number result."""
    from .reading.predictor import REASONS

    if "number" in r:
        if not r["digits"]:
            return f"{name}: refused - {REASONS.get(r['reason'], r['reason'])}"
        digits = ", ".join(
            f"{d['digit'] if not d['refused'] else '?'} {100 * d['confidence']:.1f}%"
            for d in r["digits"]
        )
        # with the marks between digits (1,526); several lines of digits on one line
        lines = r["written"].replace("\n", " / ")
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


def _threshold(args) -> float | None:
    """--threshold, checked before any model is loaded for it."""
    from .reading.cards import check_threshold

    return None if args.threshold is None else check_threshold(args.threshold, "--threshold")


def _predict(args) -> int:
    from .loading import load_predictor

    predictor = load_predictor(args.model, threshold=_threshold(args))
    # many digits are read as one batch (on every core), a number at a time
    answers = None if args.number else predictor.predict_each(args.images)
    results, failed, refused = [], 0, 0
    for i, name in enumerate(args.images):
        try:
            answer = predictor.read_number(name) if answers is None else answers[i]
            if isinstance(answer, DigitrecError):
                raise answer
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
    from .evaluate import check_report_folder, evaluate_folder, evaluate_mnist, write_report
    from .loading import load_predictor

    if args.report:
        check_report_folder(args.report, args.force)
    predictor = load_predictor(args.model)
    if args.images:
        result = evaluate_folder(predictor, args.images, progress=not args.json)
    else:
        result = evaluate_mnist(predictor, args.data_dir, progress=not args.json)
    if args.report:
        write_report(result, args.report, force=True)  # checked before evaluating
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.text())
        if args.report:
            print(f"report written to {args.report}")
    return 0


def _info(args) -> int:
    from .loading import load_predictor
    from .reading.cards import summary

    predictor = load_predictor(args.model)
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


def _serve(args) -> int:
    from .server.startup import serve

    return serve(
        host=args.host,
        port=args.port,
        model=args.model,
        db=args.db,
        workers=args.workers,
        threads=args.threads,
        max_body_mb=args.max_body_mb,
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _models_list(args) -> int:
    from .reading.registry import list_models, models_dir

    folder = models_dir()
    entries = list_models(folder)
    if args.json:
        listing = {"folder": str(folder), "models": [e.to_dict() for e in entries]}
        print(json.dumps(listing, indent=2))
        return 0
    # MNIST test first, then the other accuracies cards record (heldout, val, ...); a
    # fine-tune's copies of its parent's (*_accuracy_before) are left to --json
    found = {k for e in entries for k in e.accuracies if k.endswith("_accuracy")}
    others = sorted(found - {"test_accuracy"})
    keys = ["test_accuracy", *others]
    header = ["name", "parent", "date", *(k.removesuffix("_accuracy") for k in keys), "formats"]
    rows = [
        [
            e.name,
            e.parent or "-",
            (e.date or "-")[:16].replace("T", " "),
            *(_percent(e.accuracies.get(k)) for k in keys),
            "+".join(e.formats) or "-",
        ]
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row, e in zip([header, *rows], [None, *entries], strict=True):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(line + (f"  ! {e.problem}" if e is not None and e.problem else ""))
    print(f"models folder: {folder}" + ("" if folder.is_dir() else " (it does not exist yet)"))
    return 0


def _feedback_export(args) -> int:
    from .feedback import default_db_path, export_feedback

    n = export_feedback(args.db, args.folder)
    print(
        f"wrote {n} sample{'s' if n != 1 else ''} from {args.db or default_db_path()} to {args.folder}"
    )
    return 0


def _dataset_from_sheet(args) -> int:
    from .loading import load_predictor
    from .sheet import sheet_to_dataset

    result = sheet_to_dataset(
        args.photo, args.rows, args.out, load_predictor(args.model), args.force
    )
    print(result.summary())
    return 0


def _draw(args) -> int:
    from .desktop import run

    return run(
        args.model,
        threshold=_threshold(args),
        db=args.db,
        save_dir=args.save_dir,
        event_log=args.event_log,
    )


MODEL_HELP = (
    "a .onnx or .safetensors file, a training run's folder, the name of a model in the models folder "
    "(digitrec models list), or 'bundled' (default: $DIGITREC_MODEL, else the bundled one)"
)
DB_HELP = "the feedback database (default: feedback.sqlite3 in digitrec's user data folder)"

# Options that several commands share, each declared once, to read alike everywhere.
SHARED_OPTIONS = {
    "--model": dict(help=MODEL_HELP),
    "--json": dict(action="store_true", help="print machine-readable results only"),
    "--threshold": dict(
        type=float,
        help="refuse answers less confident than this (default: the model's calibrated one)",
    ),
    "--data-dir": dict(
        help="folder of the four MNIST files (default: $DIGITREC_DATA, else the user cache)"
    ),
    "--device": dict(default="auto", help="auto, cpu or cuda (default: auto)"),
    "--threads": dict(type=int, help="CPU threads for PyTorch (default: all cores)"),
    "--quiet": dict(action="store_true", help="no progress bars"),
    "--db": dict(help=DB_HELP),
}


# ... and those of the commands that train, which take them alike (see _torch_run)
TORCH_OPTIONS = ("--data-dir", "--device", "--threads", "--quiet")


def _shared(parser, *flags: str) -> None:
    for flag in flags:
        parser.add_argument(flag, **SHARED_OPTIONS[flag])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitrec", description="Recognise handwritten digits; train CNNs on MNIST."
    )
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        _train_parser,
        _evaluate_parser,
        _predict_parser,
        _finetune_parser,
        _combine_parser,
        _export_parser,
        _info_parser,
        _serve_parser,
        _models_parser,
        _feedback_parser,
        _dataset_parser,
        _draw_parser,
        _data_parser,
    ):
        add_command(sub)
    return parser


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a CNN on MNIST and write a checkpoint")
    p.add_argument(
        "--preset",
        help="recipe: seed, fast, best, deep (best's recipe on a 7-convolution net), bundled "
        "(the shipped model's), or pairs (the pair reader); default: best",
    )
    p.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the preset's)")
    p.add_argument("--seed", type=int, help="random seed; the same seed repeats a run")
    p.add_argument("--out", help="output folder (default: runs/<preset>)")
    p.add_argument(
        "--ensemble",
        type=int,
        metavar="N",
        help="train N members (seeds seed..seed+N-1) and save them as one model that averages "
        "their probabilities (default output: runs/<preset>-ensembleN)",
    )
    p.add_argument("--resume", action="store_true", help="continue a stopped run in --out")
    p.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--dry-run", action="store_true", help="one short epoch, to check the setup")
    p.add_argument(
        "--unipen",
        metavar="FILE",
        help="UNIPEN's pen digits (unipen_digits.jsonl.gz, or its folder), which best and "
        "bundled also learn from (default: $DIGITREC_UNIPEN)",
    )
    p.add_argument(
        "--pen",
        type=int,
        metavar="N",
        help="drawings of UNIPEN's train digits to learn from; 0: MNIST alone "
        "(default: the preset's)",
    )
    p.add_argument(
        "--framed",
        type=int,
        metavar="N",
        help="training digits stretched to fill a small box, as form readers keep them; "
        "0: none (default: the preset's)",
    )
    p.add_argument(
        "--teacher",
        metavar="FILE",
        help="a trained digit model (.safetensors, or the .onnx beside one) whose answers the "
        "new net learns besides the labels (knowledge distillation; default: none)",
    )
    _shared(p, *TORCH_OPTIONS)
    p.set_defaults(run=_train)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a model on MNIST's test set or a folder")
    _shared(p, "--model")
    src = p.add_mutually_exclusive_group()
    _shared(src, "--data-dir")
    src.add_argument("--images", help="a folder dataset laid out as DIR/<digit>/*.png|jpg")
    _shared(p, "--json")
    p.add_argument("--report", help="write a confusion matrix and error grid (PNG) here")
    p.add_argument("--force", action="store_true", help="write the report over an existing one")
    p.set_defaults(run=_evaluate)


def _predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="read the digit (or, with --number, the digits) in each picture",
        description="Exit status: 0 all read, 1 some refused (blank, not a digit, unsure), "
        "2 some pictures could not be read.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or WebP files")
    _shared(p, "--model")
    p.add_argument("--number", action="store_true", help="read every digit, left to right")
    _shared(p, "--threshold", "--json")
    p.set_defaults(run=_predict)


def _new_model_options(p, what: str) -> None:
    """Where finetune and combine write the model they make (see _new_model_file)."""
    p.add_argument("--name", help=f"the {what} name in the models folder")
    p.add_argument("--out", help="write FILE.safetensors (and .onnx) here instead")
    p.add_argument("--force", action="store_true", help="overwrite a model of that name")


def _finetune_parser(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="adapt a model to new handwriting (folder datasets, feedback) without forgetting MNIST",
        description="Mixes the new samples with MNIST's training digits, holds out part of the "
        "new samples to measure, prints accuracy before and after on them and on MNIST's test "
        "set, and writes the new model (ONNX and checkpoint, its card naming its parent and the "
        "SHA-256 of every data source) into the models folder.",
    )
    p.add_argument("--from", dest="parent", required=True, metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--data", action="append", metavar="DIR", help="a folder dataset DIR/<digit>/*.png (repeat)"
    )
    p.add_argument(
        "--feedback",
        nargs="?",
        const="",
        metavar="DB",
        help="also learn the samples in the feedback database (default: the one serve and draw use)",
    )
    _new_model_options(p, "new model's")
    p.add_argument("--epochs", type=int, help="passes over the new samples (default: 40)")
    p.add_argument(
        "--holdout", type=float, help="share of the new samples held out to measure (default 0.1)"
    )
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    _shared(p, *TORCH_OPTIONS)
    p.set_defaults(run=_finetune)


def _combine_parser(sub) -> None:
    p = sub.add_parser(
        "combine",
        help="join trained models into one ensemble that averages their probabilities",
        description="Joins digit readers of any architectures and recipes (a model that is "
        "itself an ensemble brings its members) into one model, measures it on MNIST's "
        "validation split and test set, calibrates it, and writes it (ONNX and checkpoint, its "
        "card naming every model and its SHA-256) into the models folder.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=MODEL_HELP + "; two or more")
    _new_model_options(p, "ensemble's")
    p.add_argument(
        "--unipen",
        metavar="FILE",
        help="UNIPEN's pen digits (unipen_digits.jsonl.gz, or its folder): when a model learned "
        "from them, the refusal rule is chosen on their held-out writers too "
        "(default: $DIGITREC_UNIPEN)",
    )
    _shared(p, *TORCH_OPTIONS)
    p.set_defaults(run=_combine)


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it against PyTorch")
    p.add_argument("--model", required=True, help="a .safetensors checkpoint")
    p.add_argument("--out", help="the .onnx file (default: beside the checkpoint)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(run=_export)


def _info_parser(sub) -> None:
    p = sub.add_parser("info", help="show a model's card")
    _shared(p, "--model")
    p.add_argument("--json", action="store_true", help="print the whole card as JSON")
    p.set_defaults(run=_info)


def _serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the drawing page and the JSON API",
        description="The drawing page at /, the JSON API under /api, its docs at /docs.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    _shared(p, "--model", "--db")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime threads per worker (default: 1)"
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        default=5,
        help="refuse request bodies larger than this many MiB (default: 5)",
    )
    p.set_defaults(run=_serve)


def _models_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="the models folder: models kept by name for --model",
        description="Models live in $DIGITREC_MODELS, else models/ in digitrec's user data folder "
        "($XDG_DATA_HOME/digitrec, else ~/.local/share/digitrec on Linux): NAME.onnx and/or "
        "NAME.safetensors with its card NAME.json.",
    )
    actions = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    a = actions.add_parser(
        "list", help="every model: name, parent, date, accuracies, formats (the bundled one first)"
    )
    _shared(a, "--json")
    a.set_defaults(run=_models_list)


def _feedback_parser(sub) -> None:
    p = sub.add_parser("feedback", help="the pictures people corrected on the page")
    actions = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    a = actions.add_parser("export", help="write them as a folder dataset, DIR/<digit>/<id>.png")
    a.add_argument("folder", metavar="DIR", help="the folder to write (created if need be)")
    _shared(a, "--db")
    a.set_defaults(run=_feedback_export)


def _dataset_parser(sub) -> None:
    p = sub.add_parser("dataset", help="make folder datasets of your own digits")
    actions = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    a = actions.add_parser(
        "from-sheet",
        help="cut the digits out of a photographed sheet, one digit per row, into DIR/<digit>/",
        description="Each row of the sheet holds copies of one digit. Writes DIR/<digit>/<n>.png "
        "(each digit's ink, white on black; `digitrec evaluate --images DIR` reads them) and "
        "DIR/contact-sheet.png, to check the cut-out digits by eye.",
    )
    a.add_argument("photo", metavar="PHOTO", help="the sheet: PNG, JPEG, BMP or WebP")
    a.add_argument(
        "--rows",
        required=True,
        help="the digit written in each row, top to bottom (like 0123456789 or 7777)",
    )
    a.add_argument("--out", required=True, metavar="DIR", help="the dataset folder to write")
    a.add_argument("--force", action="store_true", help="replace a dataset already in DIR")
    a.add_argument("--model", help=MODEL_HELP + "; it cuts touching digits and marks doubts")
    a.set_defaults(run=_dataset_from_sheet)


def _draw_parser(sub) -> None:
    p = sub.add_parser(
        "draw",
        help="open a window to draw digits with the mouse and read them live",
        description="Keys: c clear, u undo, m digit/number mode, s save the drawing as PNG, "
        "0-9 store the drawing with that true digit in the feedback database, q or Esc quit. "
        "Needs a display and the draw extra: pip install 'digitrec[draw]'.",
    )
    _shared(p, "--model", "--threshold")
    p.add_argument("--db", help=DB_HELP + "; the 0-9 keys store drawings here")
    p.add_argument("--save-dir", default=".", help="where s saves drawings (default: here)")
    # For tests: one JSON line per reading shown, stroke and key.
    p.add_argument("--event-log", help=argparse.SUPPRESS)
    p.set_defaults(run=_draw)


def _data_parser(sub) -> None:
    p = sub.add_parser("data", help="manage the MNIST files")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    a = actions.add_parser("download", help="fetch MNIST into the data folder, checked")
    _shared(a, "--data-dir")
    a.set_defaults(run=_data_download)


# The status of a program stopped because its reader left: 128 + SIGPIPE, what a shell
# reports for `cat` or `grep` stopped so, so that `set -o pipefail` sees the same from us.
READER_LEFT = 128 + 13


def _reader_left() -> int:
    """The reader of our output closed its end (`digitrec models list --json | head`): stop
    quietly. stdout and stderr go to the null device, so that nothing more is written to
    the closed pipe, not even Python's own complaint when it flushes at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            # a stream with no file behind it (a test's capture) has nothing to point away
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)
    return READER_LEFT


def _run(args) -> int:
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, not at exit: a reader that left is noticed in main
        return status
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, --version and usage errors, written before it
            sys.stdout.flush()
            raise
        return _run(args)
    except BrokenPipeError:
        return _reader_left()


if __name__ == "__main__":
    sys.exit(main())
