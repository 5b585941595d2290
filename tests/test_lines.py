"""Line reading: synthetic lines, CTC decoding with context, finding lines, and the line trainer on synthetic data."""
import math

import numpy as np
import pytest
import torch
from helpers import class_images, small_config

from emnist_cnn.data import lines as L
from emnist_cnn.errors import ConfigError
from emnist_cnn.recognition import decode
from emnist_cnn.recognition.lines import find_lines

CLASSES = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt") + [" "]  # ByMerge's 47 and the space


@pytest.fixture(scope="module")
def bank():
    rng = np.random.default_rng(0)
    labels = np.arange(47 * 6) % 47
    return L.CharacterBank(torch.from_numpy(class_images(labels, rng)), torch.from_numpy(labels), CLASSES)


# ----------------------------------------------------------------------------------------------- synthetic lines
def test_a_batch_is_a_function_of_seed_and_index(bank):
    a, b = L.batch_of_lines(bank, 8, 3, 5), L.batch_of_lines(bank, 8, 3, 5)
    assert a.texts == b.texts and torch.equal(a.images, b.images) and a.targets == b.targets
    c = L.batch_of_lines(bank, 8, 3, 6)
    assert c.texts != a.texts
    # training batches (similar lengths, varied stroke profiles) are deterministic all the same
    t1, t2 = L.batch_of_lines(bank, 8, 3, 5, training=True), L.batch_of_lines(bank, 8, 3, 5, training=True)
    assert torch.equal(t1.images, t2.images) and 0 <= t1.images.min() and t1.images.max() <= 1


def test_lines_have_the_model_form_and_say_their_text(bank):
    batch = L.batch_of_lines(bank, 16, 0, 0)
    assert batch.images.shape[:3] == (16, 1, L.LINE_HEIGHT) and batch.images.max() <= 1.0
    for image, width, text, target in zip(batch.images, batch.widths, batch.texts, batch.targets):
        rows = torch.nonzero(image[0].amax(dim=1) > 0.15).ravel()
        assert rows.min() >= 1 and rows.max() <= L.LINE_HEIGHT - 2  # ink rows scaled to LINE_INK, margins kept
        assert image[0, :, int(width):].abs().sum() == 0           # beyond its width: padding only
        # targets are the text's classes, merged lowercase standing for their capital (c -> C)
        assert "".join(CLASSES[k] for k in target).lower() == text.lower()


def test_touching_lines_overlap_and_spaced_lines_do_not(bank):
    def gaps(spacing):
        batch = L.batch_of_lines(bank, 32, 1, 0, L.SPACINGS[spacing], kinds=("digits",))
        return sum(int(w) for w in batch.widths) / sum(len(t) for t in batch.texts)
    spaced, tight, touching = gaps("spaced"), gaps("tight"), gaps("touching")
    assert spaced > tight > touching  # the same texts and characters, closer together: narrower lines


def test_a_line_keeps_its_writers_spacing():
    spacing = L.Spacing(-0.3, 0.5)
    owner = torch.arange(200).repeat_interleave(10)  # 200 lines of 10 characters
    gaps = L.character_gaps(spacing, owner, 200, torch.Generator().manual_seed(0)).view(200, 10)
    assert gaps.min() >= spacing.low and gaps.max() <= spacing.high
    assert (gaps.amax(dim=1) - gaps.amin(dim=1)).max() <= 2 * L.GAP_SPREAD + 1e-6  # one writer's gaps agree
    assert gaps.mean(dim=1).std() > 0.15  # writers differ: wide spacers and tight ones
    # lines of the widest spacing: every gap wide, as such a writer writes (drawn gap by gap, about one line in
    # 100,000: (0.25 / 0.8) ** 10)
    assert (gaps.amin(dim=1) > 0.25).float().mean() > 0.1


def test_texts_hold_words_digits_and_mixtures():
    rng = np.random.default_rng(0)
    words = [L.sample_text(rng, "words") for _ in range(50)]
    digits = [L.sample_text(rng, "digits") for _ in range(50)]
    assert all(w.replace(" ", "").isalpha() for w in words)
    assert any(w.islower() for w in words) and any(w.isupper() for w in words)
    assert all(d.replace(" ", "").isdigit() for d in digits)


def test_stroke_width_measures_strokes_and_thin_ones_are_widened():
    for width in (2, 5, 8):
        bars = np.zeros((60, 200), np.float32)
        bars[10:50, 20:20 + width] = bars[10:50, 60:60 + width] = 1  # two upright strokes...
        bars[28:28 + width, 20:180] = 1                              # ...and one across
        assert abs(L.stroke_width(bars) - width) < 0.25 * width + 0.5
    # a fine pen's line is widened toward EMNIST's width in its form; a broad one is left as it is
    thin, broad = np.zeros((100, 400), np.float32), np.zeros((100, 400), np.float32)
    for x in range(40, 400, 60):
        thin[10:90, x:x + 2] = 255
        broad[10:90, x:x + 16] = 255
    before, after = L.stroke_width(L.line_form(thin)), L.stroke_width(L.line_form_of_writing(thin))
    assert before < L.THIN_STROKE and after > before + 1
    assert L.stroke_width(L.line_form(broad)) >= L.THIN_STROKE
    assert np.array_equal(L.line_form_of_writing(broad), L.line_form(broad))


def test_line_form_of_one_line_matches_the_batch_form(bank):
    batch = L.batch_of_lines(bank, 1, 2, 0)
    width = int(batch.widths[0])
    line = batch.images[0, 0, :, :width].numpy()
    again = L.line_form(np.where(line > 0.15, line, 0) * 255)
    assert again.shape[0] == L.LINE_HEIGHT and abs(again.shape[1] - width) <= 3
    w = min(width, again.shape[1])
    assert np.corrcoef(line[:, :w].ravel(), again[:, :w].ravel())[0, 1] > 0.9


# ----------------------------------------------------------------------------------------------- decoding
def peaky(path, classes=CLASSES, confidence=0.9, steps_per_char=3) -> np.ndarray:
    """Log-probabilities that say `path` (characters, "_" for a blank step) with the given confidence; a step may
    also be a {class: probability} dict (the rest shared by the other classes)."""
    blank = len(classes)
    out = np.full((len(path), blank + 1), math.log((1 - confidence) / blank))
    for t, c in enumerate(path):
        said = c if isinstance(c, dict) else {c: confidence}
        rest = math.log(max(1 - sum(said.values()), 1e-6) / (blank + 1 - len(said)))
        out[t] = rest
        for k, p in said.items():
            out[t, blank if k == "_" else classes.index(k)] = math.log(p)
    return out


def test_greedy_collapses_repeats_and_drops_blanks():
    lp = peaky("_BB_OO_O_KK_")
    assert "".join(CLASSES[k] for k in decode.greedy(lp, len(CLASSES))) == "BOOK"


def test_beam_search_without_context_agrees_with_greedy():
    lp = peaky("_4_1__6_77_")
    best = decode.beam_search(lp, CLASSES)
    assert best[0].text == "4167"
    # its score sums the text's alignments, as CTC defines it: above the best path's alone, and at most the sum over
    # every alignment (the beam's pruning leaves out a few)
    exact = decode.ctc_log_likelihood(lp, ["4167"], CLASSES)[0]
    assert lp.max(axis=1).sum() + 0.01 < best[0].score <= exact + 1e-6 and best[0].score > exact - 0.05


def test_context_settles_look_alikes():
    blank = len(CLASSES)
    # each step: O and 0 (or 1 and L) nearly tied, the look-alike slightly ahead
    def tied(pairs):
        lp = np.full((len(pairs) * 2, blank + 1), math.log(1e-4))
        for i, (a, b) in enumerate(pairs):
            lp[2 * i, CLASSES.index(a)] = math.log(0.52)
            lp[2 * i, CLASSES.index(b)] = math.log(0.46)
            lp[2 * i + 1, blank] = 0.0
        return lp
    words = decode.english_lexicon()
    book = tied([("B", "8"), ("0", "O"), ("0", "O"), ("K", "X")])
    assert decode.beam_search(book, CLASSES)[0].text == "B00K"
    assert decode.beam_search(book, CLASSES, words, 1.0)[0].text == "BOOK"
    number = tied([("4", "A"), ("L", "1"), ("6", "G"), ("7", "T")])
    assert decode.beam_search(number, CLASSES, words, 1.0)[0].text == "4167"


def test_a_step_where_only_a_space_is_probable_keeps_the_reading():
    # a wide gap read as space at the line's start and twice between two characters, no blank in between: the
    # space is a gap there, and the reading goes on (dropping those steps' mass left no prefix and no reading)
    lp = peaky("  4  1", confidence=0.999)
    assert decode.beam_search(lp, CLASSES)[0].text == "4 1"
    assert decode.beam_search(lp, CLASSES, decode.english_lexicon(), 1.0)[0].text == "4 1"


def test_a_reading_that_ends_in_a_gap_counts_its_last_word_once():
    # the beam's context for a text is what WordModel.score gives it whole, whether the line's last steps read a
    # space (a gap after the last word, which ends that word) or not; the end of a word was counted twice there
    words = decode.WordModel({"HOT": 1.0, "HOTEL": 1.0})
    for path in ("_H_O_T_", "_H_O_T_ _"):
        lp = peaky(path, confidence=0.999)
        best = decode.beam_search(lp, CLASSES, words, 1.0)[0]
        ctc = decode.ctc_log_likelihood(lp, [path.replace("_", "")], CLASSES)[0]  # the mass of all its paths
        assert best.text == "HOT"
        assert best.score == pytest.approx(ctc + words.score("HOT"), abs=0.02)


def test_ctc_log_likelihood_sums_every_alignment():
    import itertools
    classes = ["A", "B", " "]
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(4), size=5))
    texts = ["AB", "A", "BA", "AA", "A B"]
    brute = dict.fromkeys(texts, 0.0)
    for path in itertools.product(range(4), repeat=5):  # every path of 5 steps; 3 is the blank
        said = [k for i, k in enumerate(path) if k != 3 and (i == 0 or path[i - 1] != k)]
        text = "".join(classes[k] for k in said)
        if text in brute:
            brute[text] += math.exp(sum(lp[t, k] for t, k in enumerate(path)))
    got = decode.ctc_log_likelihood(lp, texts, classes)
    assert np.allclose(got, [math.log(brute[t]) for t in texts], atol=1e-4)
    assert decode.ctc_log_likelihood(lp, ["AZ"], classes)[0] == -np.inf  # a class the model lacks


def test_rescoring_brings_back_a_lexicon_word_the_beam_lost():
    # the model is sure of every letter of GRANDCHILD but two: there it leans to C over N and I over L
    steps = []
    for c in "GRANDCHILD":
        row = np.full(49, math.log(1e-4))
        row[CLASSES.index(c)] = math.log(0.9)
        if c in "NL":
            row[CLASSES.index(c)], row[CLASSES.index({"N": "C", "L": "I"}[c])] = math.log(0.4), math.log(0.55)
        blank = np.full(49, math.log(1e-4))
        blank[48] = 0.0
        steps += [row, blank]
    lp = np.stack(steps)
    lp -= np.logaddexp.reduce(lp, axis=1, keepdims=True)
    words = decode.english_lexicon()
    lost = [decode.Candidate("GRACDCHIID", 0.0)]
    assert decode.rescore(lp, lost, CLASSES, words, 1.0)[0].text == "GRANDCHILD"
    assert decode.rescore(lp, lost, CLASSES, words, 0.0) == lost      # no context: as the beam read it
    # a long line of unknown words gets as many variants as the work bound allows, not one per near word each
    long = " ".join(["HAUSE"] * 40)
    lp_long = peaky("_" + "_".join(long) + "_")
    rescored = decode.rescore(lp_long, [decode.Candidate(long, 0.0)], CLASSES, words, 1.0)
    assert 1 < len(rescored) and len(rescored) * len(lp_long) * (2 * len(long) + 1) <= decode.RESCORE_CELLS
    # a word outside the lexicon that the model reads with certainty stays as read, near words or not
    assert "house" in words.near("HOUSX")
    code = peaky("_H_O_U_S_X_", confidence=0.99)
    assert decode.rescore(code, [decode.Candidate("HOUSX", 0.0)], CLASSES, words, 1.0)[0].text == "HOUSX"


def test_rescoring_mends_a_space_too_many_or_too_few():
    words = decode.english_lexicon()
    # a gap in TELEGRAPH: the model leans to a space over the A there; joined, its near words bring the A back
    lp = peaky([*"_T_E_L_E_G_R_", {" ": 0.5, "A": 0.4, "_": 0.1}, *"_P_H_"])
    assert decode.rescore(lp, [decode.Candidate("TELEGR PH", 0.0)], CLASSES, words, 1.0)[0].text == "TELEGRAPH"
    # two words read as one: the model doubts the gap, the lexicon knows both halves and not the whole
    lp = peaky([*"_O_P_E_N_", {" ": 0.4, "_": 0.6}, *"_H_O_U_S_E_"])
    assert decode.rescore(lp, [decode.Candidate("OPENHOUSE", 0.0)], CLASSES, words, 1.0)[0].text == "OPEN HOUSE"
    # a space the model is sure of stays, and a word of the lexicon is not split
    lp = peaky("_O_P_E_N_ _H_O_U_S_E_")
    assert decode.rescore(lp, [decode.Candidate("OPEN HOUSE", 0.0)], CLASSES, words, 1.0)[0].text == "OPEN HOUSE"
    assert decode.respaced(["HOUSE"], words) == [] and decode.respaced(["OPEN", "HOUSE"], words) == []
    assert decode.respaced(["OPENHOUSE"], words) == [(["OPEN", "HOUSE"], None)]


def test_a_pattern_is_met_whole_or_the_reading_is_empty():
    lp = peaky("_A_B__1_2_")
    pattern = decode.compile_pattern("[0-9]{4}")
    assert decode.beam_search(lp, CLASSES, pattern=pattern) == [] or \
        all(c.text.isdigit() and len(c.text) == 4 for c in decode.beam_search(lp, CLASSES, pattern=pattern))
    # where the model leaves room, the pattern picks: S/5 and O/0 tied, a pattern of digits decides
    lp = np.log(np.full((4, 49), 1e-4))
    lp[0, CLASSES.index("S")], lp[0, CLASSES.index("5")], lp[1, 48] = math.log(0.6), math.log(0.39), 0
    lp[2, CLASSES.index("O")], lp[2, CLASSES.index("0")], lp[3, 48] = math.log(0.6), math.log(0.39), 0
    assert decode.beam_search(lp, CLASSES)[0].text == "SO"
    assert decode.beam_search(lp, CLASSES, pattern=decode.compile_pattern("[0-9]+"))[0].text == "50"
    with pytest.raises(ConfigError, match="pattern '\\[0-9': not a regular expression"):
        decode.compile_pattern("[0-9")


def test_alignment_places_each_character():
    lp = peaky("__A__BB___C_")
    spans = decode.align(lp, [CLASSES.index(c) for c in "ABC"], len(CLASSES))
    assert spans == [(2, 2), (5, 6), (10, 10)]


def test_a_lexicon_file_is_read_and_checked(tmp_path):
    good = tmp_path / "codes.txt"
    good.write_text("AB1234\t5\nXY9876\n\n")
    words = decode.read_lexicon(good)
    assert words.size == 2 and words.log_p("AB12", "3") > words.log_p("AB12", "9")
    bad = tmp_path / "bad.txt"
    bad.write_text("AB1234\tmany\n")
    with pytest.raises(ConfigError, match="bad.txt, line 1: expected WORD or WORD<TAB>WEIGHT"):
        decode.read_lexicon(bad)
    with pytest.raises(ConfigError, match="no words"):
        (tmp_path / "empty.txt").write_text("\n")
        decode.read_lexicon(tmp_path / "empty.txt")
    with pytest.raises(ConfigError, match="unreadable"):
        decode.read_lexicon(tmp_path / "missing.txt")


def test_merged_capitals_follow_the_case_of_their_word():
    assert decode.restore_case("bOOK", CLASSES) == "book"
    assert decode.restore_case("BOOK 4167", CLASSES) == "BOOK 4167"
    assert decode.restore_case("tOP Of", CLASSES) == "top of"


# ----------------------------------------------------------------------------------------------- finding lines
def test_lines_are_found_and_dots_join_their_line():
    ink = np.zeros((120, 50), np.float32)
    ink[10:40, 5:45] = 1     # line 1
    ink[4:7, 20:23] = 1      # a dot above it
    ink[70:100, 5:30] = 1    # line 2
    assert find_lines(ink) == [(4, 40), (70, 100)]


# ----------------------------------------------------------------------------------------------- training
def test_a_line_model_trains_reads_and_reports(synth_dir, tmp_path):
    from emnist_cnn.errors import ConfigError, ReportError
    from emnist_cnn.models import load_model
    from emnist_cnn.training import train
    cfg = small_config(synth_dir, tmp_path, architecture="crnn", epochs=2, batch_size=8, optimizer="adamw",
                       lr=3e-3, scheduler="onecycle", rotate=0.0, val_fraction=0.2, preset="lines-test")
    run = train(cfg, progress=False, log=lambda *a: None)
    model, meta = load_model(run)
    assert meta["reads"] == "line" and meta["classes"][-1] == " " and meta["height"] == L.LINE_HEIGHT
    metrics = __import__("json").loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"mixed", "spaced", "tight", "touching"}
    assert 0.0 <= metrics["touching"]["cer"] and metrics["mixed"]["lines"] == 16

    # evaluate recomputes what training measured (the same test lines), alone: no ensemble of line models
    from emnist_cnn.evaluation import evaluate_models, summary
    again = evaluate_models([run], precision=cfg.precision, device="cpu")  # where training ran
    assert again["reads"] == "line" and all(again[k] == metrics[k] for k in ("mixed", "spaced", "tight", "touching"))
    assert summary(again) == again
    with pytest.raises(ConfigError, match="a line model is evaluated alone"):
        evaluate_models([run, run])

    # its report: the same self-contained page as a character run's, with a line model's contents
    from emnist_cnn.evaluation import write_report
    index = write_report(run, device="cpu", log=lambda *a: None)
    page = index.read_text()
    # no links out ("://": base64 images may spell "http")
    assert "reading lines of" in page and "Test lines" in page and "://" not in page.split("<body>")[1]
    summary = __import__("json").loads((run / "report" / "report.json").read_text())
    assert summary["reads"] == "line" and summary["mixed"] == metrics["mixed"]
    assert {"training_lines.png", "training.png", "lines_touching.png"} <= set(summary["figures"])
    assert all((run / "report" / f).is_file() for f in summary["figures"])
    assert all(e["count"] > 0 and (e["true"] or e["read"]) for e in summary["edits"])
    with pytest.raises(ReportError, match="line model's report"):
        write_report(run, "train", device="cpu")


def test_a_line_run_says_it_cannot_be_resumed(tmp_path):
    from emnist_cnn.config import get_preset
    from emnist_cnn.errors import RunError
    from emnist_cnn.files import write_json
    from emnist_cnn.training import train
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "config.json", get_preset("read-lines").to_dict())
    with pytest.raises(RunError, match="a line model's run cannot be resumed"):
        train(None, resume=run)


def test_a_pattern_too_slow_to_match_ends_the_reading(monkeypatch):
    from emnist_cnn.recognition.segment import OverBudget
    monkeypatch.setattr(decode, "PATTERN_SECONDS", 1e-9)  # every match takes longer than that
    with pytest.raises(OverBudget, match="took over .* to match"):
        decode.beam_search(peaky("_4_1_"), CLASSES, pattern=decode.compile_pattern("[0-9]+"))


def test_a_line_reports_edits_are_what_turns_the_reading_into_the_truth():
    from emnist_cnn.evaluation.line_report import substitutions
    pairs = substitutions(["BOOK 12", "hello"], ["B00K 12", "helo x"])
    assert pairs == {("o", "0"): 2, ("l", ""): 1, ("", " "): 1, ("", "x"): 1}
