"""`emnist-cnn` command line: a thin layer over the Python API, with one name per concept.

    --split NAME     the dataset (EMNIST split, local corpus or "folder")   --part train|val|test  a part of it
    --architecture   what `train` builds                                     --model                a trained model
    --out-dir        a directory to write into                               --output / -o          a file to write
    --device, --precision, --top-k, --eval-batch-size: the same meaning wherever they appear.
Old spellings keep working for one release and say what to use instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from .config import CHOICES, PRESETS, Config, field_comments, get_preset
from .errors import ConfigError, EmnistCnnError
from .models.pretrained import DEFAULT as DEFAULT_MODEL
from .models.pretrained import CHARSET_LINES
from .models.pretrained import DEFAULT_LINES as DEFAULT_LINE_MODEL

PARTS = ("train", "val", "test")


def deprecated(old: str, new: str) -> None:
    print(f"warning: {old} is deprecated and will be removed in the next release; use {new}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------- train
def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Every Config field becomes --field-name, its help the field's comment; only the flags given override the
    starting config (the preset, a recorded config, or the defaults)."""
    comments = field_comments()
    group = parser.add_argument_group("configuration (each a Config field; the default shown is Config's own)")
    for f in fields(Config):
        if f.name == "preset":
            continue  # --preset NAME selects the starting config instead
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        text = f"{comments.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        if f.type in ("bool", bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            group.add_argument(flag, dest=f.name, type=kind, default=None, choices=CHOICES.get(f.name),
                               metavar=None if f.name in CHOICES else f.name.upper(), help=text)


def config_overrides(args: argparse.Namespace) -> dict:
    overrides = {f.name: getattr(args, f.name) for f in fields(Config)
                 if f.name != "preset" and getattr(args, f.name) is not None}
    if args.model is not None:
        deprecated("train --model", "--architecture")
        overrides.setdefault("architecture", args.model)
    return overrides


def config_from_args(args: argparse.Namespace) -> Config:
    if args.preset and args.config:
        raise ConfigError("--preset and --config both name a starting configuration: give one")
    cfg = get_preset(args.preset) if args.preset else Config.from_json(args.config) if args.config else Config()
    return cfg.replace(**config_overrides(args))


def cmd_train(args) -> int:
    from .evaluation import write_report
    from .training import train
    if args.resume:
        given = sorted(config_overrides(args)) + (["preset"] if args.preset else []) + \
            (["config"] if args.config else [])
        if given:
            raise ConfigError(f"--resume continues {args.resume} as recorded in its config.json, so it takes no "
                              f"--{', --'.join(g.replace('_', '-') for g in given)}; to train again with changes, "
                              f"start a new run: emnist-cnn train --config {Path(args.resume) / 'config.json'} ...")
        run_dir = train(Config(), resume=args.resume, progress=not args.quiet)
    else:
        run_dir = train(config_from_args(args), progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks (and writes the report) for the job
        recorded = Config.from_json(run_dir / "config.json")
        if recorded.report:
            write_report(run_dir, log=print if not args.quiet else (lambda *a: None))
        print(f"run directory: {run_dir}")
    return 0


# ----------------------------------------------------------------------------------------------- evaluate, report
def part_from_args(args) -> str:
    """--part, or the old meaning of --split (train/val/test) in evaluate and report."""
    if args.split in PARTS:
        deprecated(f"--split {args.split} (the part)", f"--part {args.split}")
        args.part, args.split = args.split, None
    return args.part or "test"


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate_models, summary
    from .files import write_json
    if args.command == "ensemble":
        deprecated("emnist-cnn ensemble", "emnist-cnn evaluate MODEL1 MODEL2 ... (several models: their ensemble)")
    if args.data is not None:
        deprecated("--data", "--split")
        args.split = args.split or args.data
    if args.batch_size is not None:
        deprecated("evaluate --batch-size", "--eval-batch-size")
        args.eval_batch_size = args.batch_size
    part = part_from_args(args)
    metrics = evaluate_models(args.model, part, tta=args.tta, split=args.split, data_dir=args.data_dir,
                              classes=args.classes, device=args.device, precision=args.precision,
                              eval_batch_size=args.eval_batch_size)
    print(json.dumps(summary(metrics), indent=2))
    # a run's metrics.json holds its own model's test results (the report reads them): nothing else replaces them
    run_dir = Path(args.model[0])
    own_test = (len(args.model) == 1 and not args.tta and part == "test" and (run_dir / "config.json").is_file()
                and (args.split, args.data_dir, args.classes) == (None, None, None))
    out = Path(args.output) if args.output else (run_dir / "metrics.json" if own_test else None)
    if out is not None:
        write_json(out, metrics)
        print(f"wrote {out}")
    return 0


def cmd_report(args) -> int:
    from .evaluation import write_report
    write_report(args.run_dir, part_from_args(args) if (args.part or args.split) else None, device=args.device)
    return 0


# ----------------------------------------------------------------------------------------------- data
def cmd_data_info(args) -> int:
    from .data import ALIASES, build_dataset, is_image_folder, load_split, search_dirs
    from .data.files import file_names, part_files, split_files
    source = ALIASES.get(args.split, (args.split,))[0]
    missing, files = [], {}
    if args.split != "folder" and not is_image_folder(args.data_dir):
        found = part_files(source, search_dirs(args.data_dir))
        files = {f"{part}_{kind}" if part != "mapping" else "mapping": path
                 for part, kinds in found.items() for kind, path in kinds.items()}
        names = file_names(source)
        missing = [names[k] for k, path in files.items() if path is None]
        present = tuple(part for part in ("train", "test") if all(found[part].values()))
        if found["mapping"]["mapping"] is None or not present:
            split_files(source, search_dirs(args.data_dir))  # raises the error that names what is missing where
    if not missing:
        data = build_dataset(args.split, args.data_dir, args.classes or "", args.resplit or "", args.val_fraction,
                             download=False)
        info, classes = data.describe(), data.classes
        labels = {part: t[1].numpy() for part, t in (("train", data.train), ("val", data.val), ("test", data.test))
                  if t is not None}
    else:  # some parts are missing: describe the parts that are there, as stored
        split = load_split(source, args.data_dir, download=False, parts=present)
        classes = split.classes
        labels = {part: getattr(split, f"{part}_labels") for part in present}
        info = {"name": source, "num_classes": len(classes), "classes": "".join(classes),
                "train": 0, "val": 0, "test": 0, **{part: len(y) for part, y in labels.items()}}
    info["files"] = {k: str(v) for k, v in files.items() if v is not None}
    info["missing"] = missing
    info["per_class"] = per_class_counts(labels, classes)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['num_classes']} classes, train {info['train']:,}, val {info['val']:,}, "
          f"test {info['test']:,}")
    print(f"classes: {info['classes']}")
    for k, v in info["files"].items():
        print(f"  {k:13s} {v}")
    for name in missing:
        print(f"  missing       {name}")
    counts = info["per_class"]
    print("per class (" + "/".join(counts) + "):")
    for ch in classes:
        print(f"  {ch!r:5s} " + " / ".join(str(counts[p][ch]) for p in counts))
    return 0


def per_class_counts(labels: dict, classes: list[str]) -> dict:
    import numpy as np
    return {part: {classes[i]: int(n) for i, n in enumerate(np.bincount(y, minlength=len(classes)))}
            for part, y in labels.items()}


def cmd_data_fetch(args) -> int:
    from .data import cache_dir, load_split
    from .data.download import fetch_official
    if args.dest:
        deprecated("data fetch --dest", "--out-dir")
    dest = Path(args.out_dir or args.dest) if (args.out_dir or args.dest) else cache_dir()
    files = fetch_official(dest, url=args.url)
    print(f"{len(files)} verified files in {dest}")
    if args.split:
        s = load_split(args.split, str(dest), download=False)
        print(f"{args.split}: {len(s.train_labels):,} train, {len(s.test_labels):,} test, {len(s.classes)} classes")
    return 0


# ----------------------------------------------------------------------------------------------- models, export
def cmd_models(args) -> int:
    from .models import list_models, pretrained
    print("architectures: " + ", ".join(list_models()))
    print("presets: " + ", ".join(sorted(PRESETS)))
    shipped = pretrained.describe()
    print("pretrained:" + ("" if shipped else " none"))
    for m in shipped:
        if m["reads"] == "line":
            score = f"reads lines, test CER {m['test_cer']:.4f}" if m["test_cer"] is not None else "reads lines"
        else:
            score = f"test accuracy {m['test_accuracy']:.4f}" if m["test_accuracy"] is not None else "?"
        print(f"  {m['name']:24s} {m['architecture']:14s} {score}  classes {m['classes']!r}  "
              f"data {m['data']['name'] if m['data'] else '?'}")
    return 0


def cmd_export(args) -> int:
    from .recognition.onnx import export_onnx
    print(f"wrote {export_onnx(args.model, args.output, opset=args.opset, quantize=args.quantize)}")
    return 0


# ----------------------------------------------------------------------------------------------- recognition
def recognise_each(args, recognise, line, as_json) -> int:
    """Run recognise(path) on every image; an unusable image, a missing path or an empty folder is reported on
    stderr and the others still run; the exit status is 1 if any failed."""
    from .errors import ImageError
    from .recognition import image_files
    results, failed = {}, 0
    for path in image_files(args.images):
        try:
            if isinstance(path, ImageError):
                raise path
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


def load_recognizer(args):
    """predict's model, with --top-k and --charset checked once, before any image is read."""
    from .recognition import Recognizer
    recognizer = Recognizer.load(args.model, device=args.device, lines=None)  # predict reads no lines
    recognizer.checked(args.top_k, args.charset)
    return recognizer


def cmd_predict(args) -> int:
    recognizer = load_recognizer(args)
    return recognise_each(args, lambda p: recognizer.predict(p, args.top_k, args.charset),
                          lambda top: "  ".join(f"{c} {q:.3f}" for c, q in top),
                          lambda top: [{"character": c, "probability": q} for c, q in top])


def cmd_read(args) -> int:
    from dataclasses import asdict

    from .recognition import Recognizer
    recognizer = Recognizer.load(args.model, device=args.device, lines=args.line_model)
    options = dict(top_k=args.top_k, charset=args.charset, reader=args.reader, lexicon=args.lexicon,
                   lm_weight=args.lm_weight, pattern=args.pattern, alternatives=args.alternatives,
                   decoder=args.decoder)
    options = recognizer.read_options(**options)  # every option checked (the lexicon read) before any image
    read = lambda p: recognizer.read_with(p, options)  # noqa: E731
    def line(r):
        if r.reader == "lines":
            alts = [f"{t!r} {q:.2f}" for line in r.lines for t, q in line.alternatives[1:]]
            return repr(r.text) + (f"  (also: {', '.join(alts)})" if alts else "")
        return r.text + "  (" + " ".join(f"{c.character}:{c.confidence:.2f}" for c in r.characters) + ")"
    return recognise_each(args, read, line, asdict)


def cmd_serve(args) -> int:
    from .serving.app import serve
    serve(args.model or [DEFAULT_MODEL], host=args.host, port=args.port, backend=args.backend, device=args.device,
          allowed_hosts=args.allowed_host or ())
    return 0


# ----------------------------------------------------------------------------------------------- the parser
class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where its help already says it or there is none to show: argparse's
    own prints "(default: test) (default: None)"."""

    def _get_help_string(self, action):
        if action.default is None or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_recognize_commands(sub) -> None:
    from .recognition import BACKENDS
    from .recognition.lines import DECODERS, LM_WEIGHT
    from .recognition.recognizer import READERS
    for name, func, text in (("predict", cmd_predict, "top-k characters for images of single characters"),
                             ("read", cmd_read, "read the lines of writing in images (words, numbers, codes)")):
        c = sub.add_parser(name, help=text, formatter_class=DefaultsHelpFormatter)
        c.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
        c.add_argument("--model", default=DEFAULT_MODEL, help="run directory, model directory or pretrained name"
                       + (" (a line model here reads the lines)" if name == "read" else ""))
        c.add_argument("--top-k", type=int, default=5, help="how many candidates per character")
        c.add_argument("--charset", help="what the writing can be: digits, upper, lower, letters, alnum, or the "
                                         "characters themselves (e.g. 0123456789ABCDEF)")
        if name == "read":
            c.add_argument("--reader", default="auto", choices=READERS,
                           help="lines: the line model (touching characters, context); components: one "
                                "character per separate mark; auto: lines where a line model is loaded")
            c.add_argument("--line-model", default="auto", help="the line model (run directory, model directory "
                           f"or pretrained name); auto: {DEFAULT_LINE_MODEL} beside the default --model, and "
                           f"{', '.join(CHARSET_LINES)} for a charset it covers (digits)")
            c.add_argument("--lexicon", default="english",
                           help="words the writing is likely to hold: english (wordfreq), none, or a file with "
                                "a word (optionally TAB weight) per line")
            c.add_argument("--lm-weight", type=float, default=LM_WEIGHT,
                           help="weight of the lexicon and character language model in beam search (0 = off)")
            c.add_argument("--pattern", help="a regular expression every line must match, e.g. '[0-9]{5}' or "
                                             "'[A-Z]{2}[0-9]{4}' (case-insensitive)")
            c.add_argument("--alternatives", type=int, default=3, help="how many readings of each line to give")
            c.add_argument("--decoder", default="beam", choices=DECODERS,
                           help="CTC decoding: beam search with the context, or the best path alone")
        c.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
        c.add_argument("--json", action="store_true", help="print JSON")
        c.set_defaults(func=func)
    s = sub.add_parser("serve", help="web app with a drawing canvas, and the REST API",
                       formatter_class=DefaultsHelpFormatter)
    s.add_argument("--model", action="append", help=f"repeat to serve several; the first is the default "
                                                     f"(default {DEFAULT_MODEL})")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--backend", default="torch", choices=sorted(BACKENDS))
    s.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    s.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="also answer requests whose Host header is NAME (repeat; the --host address and the "
                        "loopback names are always answered, any other Host gets 400)")
    s.set_defaults(func=cmd_serve)


def add_evaluate_parser(sub, name: str, help_text: str) -> None:
    # a subcommand given no help gets no line in `emnist-cnn --help` (help=SUPPRESS would print "==SUPPRESS==")
    shown = {} if name in DEPRECATED_COMMANDS else {"help": help_text}
    e = sub.add_parser(name, **shown, formatter_class=DefaultsHelpFormatter)
    e.add_argument("model", nargs="+", help="run directories, model directories or pretrained names (several: "
                                            "their ensemble, the mean of their probabilities)")
    e.add_argument("--part", choices=PARTS, help="which part of the dataset (default: test)")
    e.add_argument("--split", help="the dataset (default: the one the first model was trained on)")
    e.add_argument("--data-dir", help="directories to search for it")
    e.add_argument("--classes", help="class subset, as in training")
    e.add_argument("--device", default="auto")
    e.add_argument("--precision", default="fp32", choices=CHOICES["precision"])
    e.add_argument("--eval-batch-size", type=int, default=256)
    e.add_argument("--tta", action="store_true", help="average over one-pixel shifts of each image")
    e.add_argument("-o", "--output", help="metrics JSON file (default: RUN_DIR/metrics.json for one run on its "
                                          "own test part)")
    e.add_argument("--data", help=argparse.SUPPRESS)                  # deprecated: --split
    e.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)  # deprecated: --eval-batch-size
    e.set_defaults(func=cmd_evaluate)


DEPRECATED_COMMANDS = ("ensemble",)  # still run, left out of `emnist-cnn --help`


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emnist-cnn", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (a preset or a recorded config, with any field overridden)")
    t.add_argument("--preset", metavar="NAME", help=f"start from a preset: {', '.join(sorted(PRESETS))}")
    t.add_argument("--config", metavar="CONFIG_JSON", help="start from a recorded configuration (RUN/config.json)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt, as recorded")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--model", help=argparse.SUPPRESS)  # deprecated: --architecture
    add_config_flags(t)
    t.set_defaults(func=cmd_train)

    add_evaluate_parser(sub, "evaluate", "evaluate a model (several: their ensemble) on a part of a dataset")
    add_evaluate_parser(sub, "ensemble", "")  # deprecated: evaluate takes several models

    r = sub.add_parser("report", help="write RUN_DIR/report/index.html: data, training, results, explanations")
    r.add_argument("run_dir", help="a run directory (config.json, model files, metrics.jsonl)")
    r.add_argument("--part", choices=PARTS, help="which part (default: test, else val)")
    r.add_argument("--device", default="auto")
    r.add_argument("--split", help=argparse.SUPPRESS)  # deprecated: --part
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("data", help="inspect or fetch EMNIST data").add_subparsers(dest="data_command",
                                                                                 required=True)
    i = d.add_parser("info", help="sizes, classes, per-class counts and files of a split",
                     formatter_class=DefaultsHelpFormatter)
    i.add_argument("split")
    i.add_argument("--data-dir")
    i.add_argument("--classes")
    i.add_argument("--resplit")
    i.add_argument("--val-fraction", type=float, default=0.0)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_data_info)
    f = d.add_parser("fetch", help="download and verify NIST's official archive")
    f.add_argument("split", nargs="?", help="load this split afterwards as a check")
    f.add_argument("--out-dir", help="directory (default: the cache)")
    f.add_argument("--url", help="archive URL (default: NIST's)")
    f.add_argument("--dest", help=argparse.SUPPRESS)  # deprecated: --out-dir
    f.set_defaults(func=cmd_data_fetch)

    x = sub.add_parser("export", help="export a model as ONNX (dynamic batch, classes and normalisation inside)",
                       formatter_class=DefaultsHelpFormatter)
    x.add_argument("model", help="run directory, model directory or pretrained name")
    x.add_argument("--opset", type=int, default=18, help="ONNX opset")
    x.add_argument("--quantize", choices=["int8"], help="int8 (static, calibrated on the model's training images)")
    x.add_argument("-o", "--output", help="file (default: MODEL_DIR/model[.int8].onnx)")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("models", help="list architectures, presets and pretrained models")
    m.set_defaults(func=cmd_models)
    add_recognize_commands(sub)
    sub.metavar = "{" + ",".join(c for c in sub.choices if c not in DEPRECATED_COMMANDS) + "}"
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EmnistCnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
