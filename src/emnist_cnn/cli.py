"""`emnist-cnn` command line: a thin layer over the Python API."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from .config import PRESETS, Config, get_preset
from .pretrained import DEFAULT as DEFAULT_MODEL


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Every Config field becomes --field-name; only the ones given override the preset."""
    for f in fields(Config):
        if f.name == "preset":
            continue  # --preset NAME selects the starting config instead
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.upper())


def config_from_args(args: argparse.Namespace) -> Config:
    from .data import is_image_folder
    cfg = get_preset(args.preset) if args.preset else Config()
    overrides = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    if "split" not in overrides and is_image_folder(overrides.get("data_dir")):
        overrides["split"] = "folder"
    return cfg.replace(**overrides)


def cmd_train(args) -> int:
    from .train import train
    if args.resume:
        run_dir = train(Config(), resume=args.resume, progress=not args.quiet)
    else:
        run_dir = train(config_from_args(args), progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(f"run directory: {run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    """Evaluate one model, or the ensemble of several (mean probability), optionally with shift TTA."""
    from .checkpoint import load_model, write_json
    from .data import build_dataset
    from .ensemble import Ensemble, ShiftTTA, check_members
    from .evaluate import evaluate
    from .train import resolve_device, resolve_precision
    device = resolve_device(args.device)
    loaded = [load_model(m, device) for m in args.model]
    check_members([meta for _, meta in loaded])
    classes = loaded[0][1]["classes"]
    run_dir = next((Path(m) for m in args.model if (Path(m) / "config.json").is_file()), None)
    cfg = Config.from_json(run_dir / "config.json") if run_dir else Config(val_fraction=0.0)
    cfg = cfg.replace(**{k: v for k, v in (("split", args.split_name), ("data_dir", args.data_dir),
                                           ("classes", args.classes)) if v is not None})
    data = build_dataset(cfg.split, cfg.data_dir or None, cfg.classes, cfg.resplit, cfg.val_fraction)
    if data.classes != classes:
        raise ValueError(f"the data's classes {''.join(data.classes)!r} differ from the model's "
                         f"{''.join(classes)!r}")
    part = {"train": data.train, "val": data.val, "test": data.test}[args.split]
    if part is None:
        raise ValueError(f"dataset {data.name} has no {args.split} part")
    if len(loaded) == 1 and not args.tta:
        model, (mean, std) = loaded[0][0], (loaded[0][1]["normalize"]["mean"], loaded[0][1]["normalize"]["std"])
    else:  # the wrappers normalise inside, per member: feed them pixels in [0,1]
        model = Ensemble([(m, meta["normalize"]["mean"], meta["normalize"]["std"]) for m, meta in loaded])
        model, mean, std = (ShiftTTA(model) if args.tta else model), 0.0, 1.0
    metrics = evaluate(model, *part, data.classes, mean=mean, std=std, device=device,
                       precision=resolve_precision(args.precision, device), batch_size=args.batch_size)
    metrics.update(split=args.split, models=[str(m) for m in args.model], tta=args.tta)
    summary = {k: metrics[k] for k in ("n", "accuracy", "top5_accuracy", "precision_macro", "recall_macro",
                                       "f1_macro", "f1_weighted", "roc_auc_macro")}
    print(json.dumps(summary, indent=2))
    # a run's metrics.json holds its own model's test results (the report reads them): nothing else replaces them
    out = Path(args.output) if args.output else (run_dir / "metrics.json" if len(loaded) == 1 and not args.tta
                                                 and run_dir and args.split == "test" else None)
    if out is not None:
        write_json(out, metrics)
        print(f"wrote {out}")
    return 0


def cmd_report(args) -> int:
    from .report import write_report
    write_report(args.run_dir, args.split, device=args.device)
    return 0


def cmd_data_info(args) -> int:
    import numpy as np

    from .data import build_dataset, search_dirs, split_files
    data = build_dataset(args.split, args.data_dir, args.classes or "", args.resplit or "", args.val_fraction,
                         download=False)
    info = data.describe()
    if args.split != "folder":
        from .data import ALIASES
        source = ALIASES.get(args.split, (args.split,))[0]
        info["files"] = {k: str(v) for k, v in split_files(source, search_dirs(args.data_dir)).items()}
    counts = {}
    for part in ("train", "val", "test"):
        tensors = getattr(data, part)
        if tensors is not None:
            c = np.bincount(tensors[1].numpy(), minlength=len(data.classes))
            counts[part] = {data.classes[i]: int(n) for i, n in enumerate(c)}
    info["per_class"] = counts
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['num_classes']} classes, train {info['train']:,}, val {info['val']:,}, "
          f"test {info['test']:,}")
    print(f"classes: {info['classes']}")
    for k, v in info.get("files", {}).items():
        print(f"  {k:13s} {v}")
    print("per class (" + "/".join(counts) + "):")
    for i, ch in enumerate(data.classes):
        print(f"  {ch!r:5s} " + " / ".join(str(counts[p][ch]) for p in counts))
    return 0


def cmd_data_fetch(args) -> int:
    from .data import cache_dir, load_split
    from .download import fetch_official
    dest = Path(args.dest) if args.dest else cache_dir()
    files = fetch_official(dest, url=args.url)
    print(f"{len(files)} verified files in {dest}")
    if args.split:
        s = load_split(args.split, str(dest), download=False)
        print(f"{args.split}: {len(s.train_labels):,} train, {len(s.test_labels):,} test, {len(s.classes)} classes")
    return 0


def cmd_models(args) -> int:
    from . import pretrained
    from .models import list_models
    print("architectures: " + ", ".join(list_models()))
    print("presets: " + ", ".join(sorted(PRESETS)))
    shipped = pretrained.describe()
    print("pretrained:" + ("" if shipped else " none"))
    for m in shipped:
        acc = f"{m['test_accuracy']:.4f}" if m["test_accuracy"] is not None else "?"
        print(f"  {m['name']:24s} {m['architecture']:14s} test accuracy {acc}  classes {m['classes']}  "
              f"data {m['data']['name'] if m['data'] else '?'}")
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx
    print(f"wrote {export_onnx(args.model, args.output, opset=args.opset, quantize=args.quantize)}")
    return 0


def recognise_each(args, recognise, line, as_json) -> int:
    """Run recognise(path) on every image; an unusable image is reported and the others still run."""
    from .preprocess import ImageError
    from .recognize import image_files
    results, failed = {}, 0
    for path in image_files(args.images):
        try:
            results[path] = recognise(path)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        if not args.json:
            print(f"{path}  {line(results[path])}")
    if args.json:
        print(json.dumps({p: as_json(r) for p, r in results.items()}, indent=2))
    return 1 if failed else 0


def cmd_predict(args) -> int:
    from .recognize import Recognizer
    recognizer = Recognizer.load(args.model)
    return recognise_each(args, lambda p: recognizer.predict(p, args.top_k),
                          lambda top: "  ".join(f"{c} {q:.3f}" for c, q in top),
                          lambda top: [{"character": c, "probability": q} for c, q in top])


def cmd_read(args) -> int:
    from dataclasses import asdict

    from .recognize import Recognizer
    recognizer = Recognizer.load(args.model)
    return recognise_each(args, lambda p: recognizer.read(p, top_k=3),
                          lambda r: r.text + "  (" + " ".join(f"{c.character}:{c.confidence:.2f}"
                                                              for c in r.characters) + ")",
                          asdict)


def cmd_serve(args) -> int:
    from .serve import serve
    serve(args.model or [DEFAULT_MODEL], host=args.host, port=args.port, backend=args.backend)
    return 0


def add_recognize_commands(sub) -> None:
    from .recognize import BACKENDS
    for name, func, text in (("predict", cmd_predict, "top-k characters for images of single characters"),
                             ("read", cmd_read, "read the separated characters written in images")):
        c = sub.add_parser(name, help=text)
        c.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
        c.add_argument("--model", default=DEFAULT_MODEL, help=f"run directory, model directory or pretrained "
                                                              f"name (default {DEFAULT_MODEL})")
        if name == "predict":
            c.add_argument("--top-k", type=int, default=5)
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)
    s = sub.add_parser("serve", help="web app with a drawing canvas, and the REST API")
    s.add_argument("--model", action="append", help=f"repeat to serve several; the first is the default "
                                                     f"(default {DEFAULT_MODEL})")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--backend", default="torch", choices=sorted(BACKENDS))
    s.set_defaults(func=cmd_serve)


def add_evaluate_parser(sub, name: str, help_text: str) -> None:
    e = sub.add_parser(name, help=help_text)
    e.add_argument("model", nargs="+", help="run directories, model directories or pretrained names")
    e.add_argument("--split", default="test", choices=["train", "val", "test"], help="which part")
    e.add_argument("--data", dest="split_name", help="dataset (default: the run's own)")
    e.add_argument("--data-dir")
    e.add_argument("--classes")
    e.add_argument("--device", default="auto")
    e.add_argument("--precision", default="auto")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--tta", action="store_true", help="average over one-pixel shifts of each image")
    e.add_argument("--output", help="metrics JSON path (default: RUN_DIR/metrics.json for one run on its test part)")
    e.set_defaults(func=cmd_evaluate)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emnist-cnn", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (a preset, with any field overridden)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--preset", dest="preset", metavar="NAME", help=f"one of: {', '.join(sorted(PRESETS))}")
    add_config_flags(t)
    t.set_defaults(func=cmd_train)

    for name, help_text in (("evaluate", "evaluate a run directory or model (several: their ensemble) on a split"),
                            ("ensemble", "evaluate the ensemble (mean probability) of several runs or models")):
        add_evaluate_parser(sub, name, help_text)

    r = sub.add_parser("report", help="write RUN_DIR/report/index.html: data, training, results, explanations")
    r.add_argument("run_dir", help="a run directory (config.json, model files, metrics.jsonl)")
    r.add_argument("--split", choices=["train", "val", "test"], help="which part (default: test, else val)")
    r.add_argument("--device", default="auto")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("data", help="inspect or fetch EMNIST data").add_subparsers(dest="data_command",
                                                                                 required=True)
    i = d.add_parser("info", help="sizes, classes and per-class counts of a split")
    i.add_argument("split")
    i.add_argument("--data-dir")
    i.add_argument("--classes")
    i.add_argument("--resplit")
    i.add_argument("--val-fraction", type=float, default=0.0)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_data_info)
    f = d.add_parser("fetch", help="download and verify NIST's official archive")
    f.add_argument("split", nargs="?", help="load this split afterwards as a check")
    f.add_argument("--dest", help="directory (default: the cache)")
    f.add_argument("--url", help="archive URL (default: NIST's)")
    f.set_defaults(func=cmd_data_fetch)

    x = sub.add_parser("export", help="export a model as ONNX (dynamic batch, classes and normalisation inside)")
    x.add_argument("model", help="run directory, model directory or pretrained name")
    x.add_argument("--format", default="onnx", choices=["onnx"])
    x.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    x.add_argument("--quantize", choices=["int8"], help="int8 (static, calibrated on the model's training images)")
    x.add_argument("-o", "--output", help="file (default: MODEL_DIR/model[.int8].onnx)")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("models", help="list architectures, presets and pretrained models")
    m.set_defaults(func=cmd_models)
    add_recognize_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import ModelFileError
    from .data import DataError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ModelFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
