"""Reading lines: character error rate and exact lines of `Recognizer.read`, per spacing and kind of text, for the
connected-component reader and the line model (greedy, with context, with the right charset); and latency.

Lines are composed (emnist_cnn.data.lines) from the TEST part of a LOCAL corpus (localbymerge: characters the
shipped models never trained on) and given to `read` as PNG files, dark ink on white, as a user would: every reader
goes through the whole pipeline. Spacings (issue 18): spaced (gaps 0.3-0.5 character widths), tight (0-0.1),
touching (overlap 0-0.3). Words are English words by frequency (lowercase, capitalised, uppercase); digit strings
are numbers, dates, phone- and ID-like groups. CER is case-insensitive (ByMerge's merged classes cannot tell
c from C), computed with rapidfuzz's Levenshtein distance.

    python benchmarks/read.py                 # 6,000 lines -> results/read.json (+ read_latency-CPUKIND.json)
    python benchmarks/read.py --tune          # choose lm_weight on validation lines (train part) -> read_tuning.json
    python benchmarks/read.py --figure        # docs/read.png: lines as given, the strip the model saw, the answers
    python benchmarks/read.py --line-model DIR   # another line model on the same test lines -> results/read_DIR.json
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentiles, save_figure, setup_data_dir, table, times_ms, write_results  # noqa: E402

from emnist_cnn.config import get_preset  # noqa: E402
from emnist_cnn.data import dataset_for  # noqa: E402
from emnist_cnn.data.lines import SPACE, SPACINGS, CharacterBank, Spacing, batch_of_lines, compose, sample_text  # noqa: E402,E501
from emnist_cnn.errors import EmnistCnnError  # noqa: E402
from emnist_cnn.evaluation.lines import score  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402

KINDS = {"words": "letters", "digits": "digits"}  # kind of text -> the charset that is right for it
TUNE_LINES = 300  # validation lines per cell for --tune (60 could not tell lm_weight 1.0 from 1.5)
UPSCALE = 3  # the 32-row line form, drawn 3x as large: a 96-pixel line as a scan or canvas gives


def png_of(line: torch.Tensor, width: int) -> bytes:
    """A line (LINE_HEIGHT×W, ink light on 0) as a PNG of dark ink on white paper, with a margin."""
    ink = line[:, :width].numpy()
    ink = np.where(ink < 0.1, 0, ink)  # the faint fringe of the composed line's blur is not ink on paper
    img = Image.fromarray(np.uint8(255 - np.clip(ink, 0, 1) * 255)).resize(
        (width * UPSCALE, ink.shape[0] * UPSCALE), Image.Resampling.BICUBIC)
    paper = Image.new("L", (img.width + 80, img.height + 80), 255)
    paper.paste(img, (40, 40))
    buf = io.BytesIO()
    paper.save(buf, "PNG")
    return buf.getvalue()


def lines_of(bank: CharacterBank, kind: str, spacing: str, n: int, seed: int) -> tuple[list[bytes], list[str]]:
    files, truths = [], []
    for b in range((n + 63) // 64):
        batch = batch_of_lines(bank, min(64, n - 64 * b), seed, b, SPACINGS[spacing] if spacing else Spacing(),
                               kinds=(kind,))
        for image, width, target in zip(batch.images, batch.widths, batch.targets):
            files.append(png_of(image[0], int(width)))
            truths.append("".join(bank.classes[k] for k in target))
    return files, truths


def stroke_widths(files: list[bytes]) -> dict:
    """Percentiles of the strokes' width in each line's form as read makes it before widening any
    (data.lines.stroke_width of line_form): what THIN_STROKE and STROKE are set from."""
    from emnist_cnn.data import preprocess
    from emnist_cnn.data.lines import line_form, stroke_width
    widths = [stroke_width(line_form(preprocess.ink_map(preprocess.open_image(f))[0])) for f in files]
    return {f"p{q}": round(float(np.percentile(widths, q)), 2) for q in (10, 50, 90)}


def read_all(recognizer: Recognizer, files: list[bytes], **options) -> list[str]:
    out = []
    for f in files:
        try:
            out.append(recognizer.read(f, **options).text)
        except EmnistCnnError:  # a reader that gives up on a line (too many marks, no ink) read nothing of it
            out.append("")
    return out


def digit_ceiling(recognizer: Recognizer, bank: CharacterBank, digit_truths: dict[str, list[str]]) -> list[dict]:
    """How far any reader that judges each digit on its own could get: each character model (the default, told the
    charset, and the digits model), on every test-part digit image as EMNIST gives it (clean, upright, alone), and
    the exact lines a reader that cut each line perfectly and read every digit that well would get on each
    spacing's digit strings (the mean of accuracy ** digits over the lines). The line models read the same images
    jittered, thinned and beside others."""
    digits = [k for k, c in enumerate(bank.classes) if c.isdigit()]
    picks = np.concatenate([bank.by_class[k] for k in digits])
    truth = [bank.classes[k] for k in digits for _ in bank.by_class[k]]
    images = bank.images[torch.from_numpy(picks)].numpy()
    out = []
    for model in (recognizer, Recognizer.load("emnist-cnn/digits", lines=None)):
        read = [top[0][0] for i in range(0, len(images), 2048)  # in blocks: the model's activations stay small
                for top in model.classify(images[i:i + 2048], top_k=1, charset="digits")]
        accuracy = float(np.mean([r == t for r, t in zip(read, truth)]))
        out.append({"character_model": model.name, "digit_images": len(picks), "accuracy": accuracy,
                    "exact_lines": {spacing: float(np.mean([accuracy ** len(t.replace(SPACE, "")) for t in truths]))
                                    for spacing, truths in digit_truths.items()}})
    return out


def latency(recognizer: Recognizer, bank: CharacterBank, repeats: int) -> dict:
    """read() of 10-character lines end to end (PNG in, text out), at 1 and 2 threads, and through REST."""
    from fastapi.testclient import TestClient

    from emnist_cnn.serving.app import create_app
    rng = np.random.default_rng(7)
    texts = [sample_text(rng, "mixed").replace(SPACE, "")[:10].ljust(10, "7") for _ in range(20)]
    batch = compose(bank, texts, Spacing(), torch.Generator().manual_seed(7), rng)
    files = [png_of(image[0], int(width)) for image, width in zip(batch.images, batch.widths)]
    out = {}
    threads = torch.get_num_threads()
    for n in (1, 2):
        torch.set_num_threads(n)
        times = times_ms(lambda i: recognizer.read(files[i % len(files)]), repeats, warmup=3)
        out[f"threads_{n}"] = percentiles(times)
    # REST as `emnist-cnn serve` runs it ("rest"): torch on one thread, since the model thread shares the cores
    # with the event loop; and on two, to compare
    client = TestClient(create_app(recognizer))

    def post(i: int) -> None:
        reply = client.post("/api/v1/read", files={"file": ("line.png", files[i % len(files)], "image/png")})
        assert reply.status_code == 200, reply.text
    for n, key in ((1, "rest"), (2, "rest_torch_2_threads")):
        torch.set_num_threads(n)
        out[key] = percentiles(times_ms(post, repeats, warmup=3))
    torch.set_num_threads(threads)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="lines per spacing and kind (6 cells): a cell's exact-line "
                        "figure near 95%% has a standard error of 0.7 points at 1,000, 1.2 at 334")
    parser.add_argument("--split", default="localbymerge")
    parser.add_argument("--repeats", type=int, default=200, help="reads per latency figure")
    parser.add_argument("--tune", action="store_true", help="choose lm_weight on validation lines instead")
    parser.add_argument("--figure", action="store_true", help="draw docs/read.png instead")
    parser.add_argument("--line-model", help="another line model (a run or model directory) instead of the shipped "
                        "one: the same test lines, results -> read_<its directory's name>.json, no latency")
    args = parser.parse_args()
    setup_data_dir()
    data = dataset_for(get_preset("read-lines").replace(split=args.split))
    # the default: bymerge47 for components, the shipped line model for lines
    recognizer = Recognizer.load(lines=args.line_model or "auto")
    classes = recognizer.lines.classes
    if args.tune:
        return tune(recognizer, CharacterBank(*data.val, classes), args)
    bank = CharacterBank(*data.test, classes)
    if args.figure:
        return figure(recognizer, bank)
    # (name, recognizer, options, told the charset); read takes lines10 for charset digits where it is loaded:
    # the default line model alone, told the charset, is measured beside it
    general = Recognizer(recognizer.backend, recognizer.name, recognizer.lines)
    readers = [("components", recognizer, dict(reader="components"), False),
               ("lines, greedy", recognizer, dict(reader="lines", decoder="greedy"), False),
               ("lines + context", recognizer, dict(reader="lines"), False),
               *([("lines + context + charset, default line model alone", general, dict(reader="lines"), True)]
                 if recognizer.charset_lines else []),
               ("lines + context + charset", recognizer, dict(reader="lines"), True)]
    rows, results, widths, digit_truths = [], [], {}, {}
    for cell, (spacing, (kind, charset)) in enumerate((s, k) for s in SPACINGS for k in KINDS.items()):
        files, truths = lines_of(bank, kind, spacing, args.n, seed=1000 + cell)
        widths[f"{spacing} {kind}"] = stroke_widths(files)
        if kind == "digits":
            digit_truths[spacing] = truths
        for name, reader, options, told in readers:
            options = {**options, "charset": charset} if told else options
            start = time.perf_counter()
            reads = read_all(reader, files, **options)
            seconds = time.perf_counter() - start
            s = score(reads, truths)
            results.append({"spacing": spacing, "kind": kind, "reader": name, **s,
                            "exact_se": float(np.sqrt(s["exact"] * (1 - s["exact"]) / len(files))),
                            "read_by": reader.read_by(reader.read_options(**options)),
                            "ms_per_line": 1000 * seconds / len(files),
                            "examples": [[t, r] for t, r in zip(truths[:5], reads[:5])]})
            print(f"{spacing} {kind} {name}: CER {s['cer']:.4f} exact {s['exact']:.3f}", flush=True)
    ceiling = digit_ceiling(recognizer, bank, digit_truths)
    name = f"read_{Path(args.line_model).resolve().name}" if args.line_model else "read"
    path = write_results(name, {"data": f"{args.split} test part (LOCAL corpus)", "lines_per_cell": args.n,
                                "line_model": {"name": recognizer.lines.meta.get("name", recognizer.lines.name),
                                               "trained_at": recognizer.lines.meta.get("git_revision")},
                                "charset_line_models": {r.name: r.meta.get("git_revision")
                                                        for r in recognizer.charset_lines},
                                  "targets": "touching CER <= 5% with context and >= 5x lower than components; "
                                             "spaced words >= 95% exact; digits >= 97% exact with charset=digits",
                                "results": results, "stroke_widths": widths, "digit_ceiling": ceiling})
    for spacing in SPACINGS:  # the README's table: per spacing and kind, CER / exact lines for each reader
        for kind in KINDS:
            cells = {r["reader"]: f"{100 * r['cer']:.1f}% / {100 * r['exact']:.1f}%" for r in results
                     if r["spacing"] == spacing and r["kind"] == kind}
            rows.append({"spacing": spacing, "text": kind, **cells})
    print(table(rows, list(rows[0]), markdown=True))
    for c in ceiling:
        print(f"digits read one by one by {c['character_model']} (charset digits): {c['accuracy']:.4f}; "
              "exact digit lines at that accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in c["exact_lines"].items()))
    print(f"wrote {path}")
    if args.line_model:
        return
    speed = latency(recognizer, bank, args.repeats)
    speed_path = write_results("read_latency", {"line": "10 characters, PNG in, text out", **speed},
                               per_machine=True)
    print("latency of a 10-character line (ms): " + ", ".join(
        f"{k} p50 {v['p50_ms']:.1f} p99 {v['p99_ms']:.1f}" for k, v in speed.items()))
    print(f"wrote {speed_path}")


def tune(recognizer: Recognizer, bank: CharacterBank, args) -> None:
    """lm_weight chosen on lines of the validation characters (held out of the train part), never the test part."""
    rows = []
    cells = [(s, k) for s in SPACINGS for k in KINDS]
    sets = {c: lines_of(bank, c[1], c[0], TUNE_LINES, seed=1 + i) for i, c in enumerate(cells)}
    for weight in (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0):
        reads = {c: read_all(recognizer, files, lm_weight=weight) for c, (files, _) in sets.items()}
        scores = {c: score(reads[c], sets[c][1]) for c in cells}
        rows.append({"lm_weight": weight,
                     **{f"{s}/{k} CER / exact": f"{scores[(s, k)]['cer']:.4f} / {scores[(s, k)]['exact']:.3f}"
                        for s, k in cells},
                     "mean CER": f"{np.mean([v['cer'] for v in scores.values()]):.4f}"})
        print(rows[-1], flush=True)
    path = write_results("read_tuning", {"data": "validation share of the train part", "lines_per_cell": TUNE_LINES,
                                         "rows": rows})
    print(table(rows, list(rows[0]), markdown=True))
    print(f"wrote {path}")


def figure(recognizer: Recognizer, bank: CharacterBank) -> None:
    """Three test lines, one per spacing: the image `read` was given, the 32-row strip the line model saw, and
    what each reader answered."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emnist_cnn.data import preprocess
    from emnist_cnn.data.lines import line_form
    rows = []
    for i, (spacing, kind) in enumerate((("spaced", "words"), ("tight", "mixed"), ("touching", "words"))):
        files, truths = lines_of(bank, kind, spacing, 1, seed=77 + i)
        ink, _, _ = preprocess.ink_map(preprocess.open_image(files[0]))
        rows.append((spacing, files[0], line_form(ink), truths[0], recognizer.read(files[0]).text,
                     recognizer.read(files[0], reader="components").text))
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.6 * len(rows)), gridspec_kw={"width_ratios": [1.4, 1]})
    for (spacing, file, strip, truth, lines, components), (left, right) in zip(rows, axes):
        left.imshow(Image.open(io.BytesIO(file)), cmap="gray", vmin=0, vmax=255)
        left.set_title(f"{spacing}: the image given to read", fontsize=9, loc="left")
        right.imshow(strip, cmap="gray")
        right.set_title(f"the {strip.shape[0]}-row strip the line model saw", fontsize=9, loc="left")
        right.set_xlabel(f"truth {truth!r}   lines: {lines!r}   components: {components!r}", fontsize=9)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    save_figure(fig, "read", dpi=110)


if __name__ == "__main__":
    main()
