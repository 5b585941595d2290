"""CTC decoding: the best path (greedy), and a prefix beam search that reads with context.

The context is a character language model over words (`WordModel`): where the letters so far begin a word of the
lexicon, the next letter is as likely as the lexicon's words make it (a trie of word frequencies); elsewhere a
backoff: letters by their English frequency, digits evenly, and a change between letters and digits unlikely
(what settles BOOK against B00K and 4167 against 4L67). A `pattern` (a regular expression such as [0-9]{5})
prunes every prefix that cannot begin a match, and the answer must match it whole. A charset masks classes.

A beam keeps few prefixes, so a word of the lexicon whose letter the model scored low at one step can drop out of it
early ("GRANDCHILD" read as "GRACDCHIID"). `rescore` then does what the CRNN paper (Shi et al. 2015) does with a
lexicon: for each word of the best reading that is not in the lexicon, the lexicon's words within an edit or two are
tried in its place, and every reading is scored whole, its CTC probability (all alignments, torch's ctc_loss) plus
the weighted context. A space that beam search put in or left out (a gap a little wider or narrower than the
writer's others) is mended the same way: `respaced` joins or splits words where the lexicon says so.

Why not a library: pyctcdecode wants a KenLM word model and knows nothing of classes that stand for two cases or
of patterns; torchaudio's decoder does not install beside this torch. This search is ~150 lines of numpy and reads
a 10-character line in a few milliseconds (benchmarks/read.py).
"""
from __future__ import annotations

import functools
import heapq
import math
import os
import string
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.lines import classes_of, english_words
from ..errors import ConfigError
from ..models.line_models import greedy  # noqa: F401  (the best path: part of this module's API)
from .segment import OverBudget

SPACE = " "
NEG = -1e30
PATTERN_SECONDS = 0.05  # one partial match of a prefix; real patterns take microseconds
NEAR_WORDS = 8          # lexicon words tried in place of an unknown word, per length
RESCORE_CELLS = 2_000_000  # CTC lattice cells (steps × target states) rescored per line at most, about 30 ms:
                           # a long line of many unknown words gets fewer variants, never a stall


def lse(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats: numpy's ufunc costs ~1 µs a call on scalars, this ~0.2."""
    if a < b:
        a, b = b, a
    return a if b <= NEG / 2 else a + math.log1p(math.exp(b - a))


# ------------------------------------------------------------------------------------------------- context
class WordModel:
    """P(next character | the word so far), lowercased; END is the word's end (a space or the line's end)."""
    END = "\n"

    def __init__(self, words: dict[str, float], letter_switch: float = 0.02):
        self.counts: dict[str, float] = defaultdict(float)  # trie as prefix -> total weight of words below it
        self.ends: dict[str, float] = defaultdict(float)
        letters: dict[str, float] = defaultdict(float)
        for word, weight in words.items():
            w = word.lower()
            for i in range(len(w) + 1):
                self.counts[w[:i]] += weight
            self.ends[w] += weight
            for c in w:
                letters[c] += weight
        total = sum(letters.values()) or 1.0
        self.letter_p = {c: letters.get(c, 0.0) / total * 0.97 + 0.03 / 26 for c in string.ascii_lowercase}
        self.switch = letter_switch
        self.size = len(words)
        self._by_length: dict[int, list[str]] | None = None

    def knows(self, word: str) -> bool:
        return self.ends.get(word.lower(), 0.0) > 0

    def near(self, word: str) -> list[str]:
        """The lexicon's words (lowercase) within an edit of word (two for words over 4 letters), the closest
        first: what a word outside the lexicon might have been."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein
        if self._by_length is None:
            self._by_length = defaultdict(list)
            for w in self.ends:
                self._by_length[len(w)].append(w)
        w = word.lower()
        edits = 1 if len(w) <= 4 else 2
        found = []
        for n in range(len(w) - edits, len(w) + edits + 1):
            found += process.extract(w, self._by_length.get(n, []), scorer=Levenshtein.distance,
                                     score_cutoff=edits, limit=NEAR_WORDS)
        return [near for near, _, _ in sorted(found, key=lambda f: f[1])]

    def step(self, text: str, c: str) -> float:
        """What the context adds for text going on with c; a space ends the word so far."""
        return self.log_p(text.rsplit(SPACE, 1)[-1], self.END if c == SPACE else c)

    def score(self, text: str) -> float:
        """The context's log score of a whole text, its last word ended: the steps beam search adds up."""
        return sum(self.step(text[:i], c) for i, c in enumerate(text + SPACE))

    @functools.lru_cache(maxsize=200_000)  # noqa: B019 - one model per lexicon, kept for the process
    def log_p(self, word: str, c: str) -> float:
        """log P(c | word so far) / P(c) for c a character or END: what the context adds to the character's
        own prior (the backoff of an empty word). A ratio, not P itself, so that a digit string, whose digits
        are as likely as each other, costs no more than a word whose letters follow each other predictably."""
        w = word.lower()
        backoff = self.backoff(w, c)
        prior = self.backoff("", c)
        # a word's first character, and the end of a one-character word (an initial, a code), go by their prior:
        # a digit string is not less likely than a word for beginning otherwise, nor a lone letter for ending
        n = self.counts.get(w, 0.0) if w and not (c == self.END and len(w) == 1) else 0.0
        if n <= 0:
            return math.log(backoff / prior)
        below = self.ends.get(w, 0.0) if c == self.END else self.counts.get(w + c.lower(), 0.0)
        # the trie's estimate, smoothed by the backoff with the weight of 2% of the words below this prefix:
        # a word outside the lexicon stays possible, and costs more the more the lexicon says otherwise
        k = 0.02 * n + 1e-9
        return math.log((below + k * backoff) / (n + k) / prior)

    def backoff(self, w: str, c: str) -> float:
        last = w[-1:] if w else ""
        if c == self.END:
            return 0.2
        kind = "digit" if c.isdigit() else "letter"
        before = "" if not last else ("digit" if last.isdigit() else "letter")
        same = 1.0 if not before else (1 - self.switch if kind == before else self.switch)
        # the first character of a word: as likely a digit as a letter
        share = 0.5 if not before else same
        return 0.8 * share * (0.1 if kind == "digit" else self.letter_p.get(c.lower(), 0.03 / 26))


@functools.lru_cache(maxsize=4)
def english_lexicon(n: int = 50_000) -> WordModel:
    """The wordfreq list's n most frequent ASCII words, weighted by frequency tempered by ^0.5."""
    words, frequency = english_words(n)
    return WordModel(dict(zip(words, (frequency ** 0.5).tolist())))


def read_lexicon(path: str | os.PathLike) -> WordModel:
    """A lexicon file: a word per line, optionally followed by a tab and its weight (default 1)."""
    words: dict[str, float] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                word, _, weight = line.partition("\t")
                try:
                    words[word.strip()] = float(weight) if weight else 1.0
                except ValueError:
                    raise ConfigError(f"{path}, line {number}: expected WORD or WORD<TAB>WEIGHT, found {line!r}",
                                      field="lexicon") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"lexicon {path}: unreadable ({e})", field="lexicon") from None
    if not words:
        raise ConfigError(f"lexicon {path}: no words in it", field="lexicon")
    return WordModel(words)


def compile_pattern(pattern: str | None):
    """A pattern the whole line must match (case-insensitive: merged classes cannot tell the case)."""
    if pattern is None:
        return None
    import regex
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as e:
        raise ConfigError(f"pattern {pattern!r}: not a regular expression ({e})", field="pattern") from None


def matches(pattern, text: str, partial: bool = False) -> bool:
    """Whether text matches the pattern whole (partial: could still grow into a match); a pattern that takes over
    PATTERN_SECONDS on one text (catastrophic backtracking, such as (a+)+b) ends the reading."""
    try:
        return pattern.fullmatch(text, partial=partial, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise OverBudget(f"pattern {pattern.pattern!r}: took over {PATTERN_SECONDS} s to match {text!r}; "
                         f"simplify it (nested repeats such as (a+)+ backtrack without end)") from None


# ------------------------------------------------------------------------------------------------- beam search
@dataclass
class Candidate:
    text: str
    score: float  # log probability of the text under the model (CTC) plus the weighted context


def beam_search(log_probs: np.ndarray, classes: list[str], lm: WordModel | None = None, lm_weight: float = 0.0,
                pattern=None, beam: int = 10, prune: float = math.log(1e-3),
                deadline: float | None = None) -> list[Candidate]:
    """Prefix beam search (Hannun et al. 2014) over T×(classes+1) log-probabilities (blank last); the best
    candidates first. A step where the blank is nearly certain only moves every prefix's mass to 'ends in blank'.
    `deadline` (time.monotonic()) bounds the search, and a pattern that backtracks for longer than PATTERN_SECONDS
    on one prefix ends it: neither may hold a server's model thread (segment.OverBudget)."""
    blank = len(classes)
    # prefix -> (log P ending in blank, log P ending in its last character), plus its context score
    beams: dict[str, tuple[float, float]] = {"": (0.0, NEG)}
    context: dict[str, float] = {"": 0.0}
    use_lm = lm is not None and lm_weight > 0

    def extend_score(prefix: str, c: str) -> float | None:
        text = prefix + c
        if pattern is not None and not matches(pattern, text, partial=True):
            return None
        if not use_lm:
            return context[prefix]
        return context[prefix] + lm_weight * lm.step(prefix, c)

    for t in range(len(log_probs)):
        if deadline is not None and time.monotonic() > deadline:
            raise OverBudget("reading this image took longer than its time budget")
        lp = log_probs[t]
        if lp[blank] > -1e-3:  # blank all but certain
            beams = {p: (lse(b, nb) + float(lp[blank]), NEG) for p, (b, nb) in beams.items()}
            continue
        options = [(int(k), float(lp[k])) for k in np.flatnonzero(lp > prune)]
        nxt: dict[str, list[float]] = defaultdict(lambda: [NEG, NEG])
        for prefix, (b, nb) in beams.items():
            total = lse(b, nb)
            for k, p in options:
                if k == blank:
                    cell = nxt[prefix]
                    cell[0] = lse(cell[0], total + p)
                    continue
                c = classes[k]
                if c == SPACE and (not prefix or prefix.endswith(SPACE)):
                    # a space before the first character or after a space is no character of the text but a
                    # gap, and its mass stays with the prefix (dropped, a step where only a space is probable,
                    # as a wide gap can be, would end every prefix and leave no reading at all)
                    cell, state = nxt[prefix], 1 if prefix else 0  # the space goes on / the line has not begun
                    cell[state] = lse(cell[state], total + p)
                    continue
                if prefix and prefix[-1] == c:
                    cell = nxt[prefix]  # a repeat without a blank between stays the same character
                    cell[1] = lse(cell[1], nb + p)
                    if b <= NEG / 2:
                        continue
                    source = b  # a repeat after a blank is a second character
                else:
                    source = total
                text = prefix + c
                if text not in context:
                    score = extend_score(prefix, c)
                    if score is None:
                        continue
                    context[text] = score
                cell = nxt[text]
                cell[1] = lse(cell[1], source + p)
        ranked = heapq.nlargest(beam, nxt.items(), key=lambda kv: lse(*kv[1]) + context[kv[0]])
        beams = {p: (v[0], v[1]) for p, v in ranked}

    out = []
    for prefix, (b, nb) in beams.items():
        text = prefix.rstrip(SPACE)
        score = lse(b, nb) + context[prefix]
        if use_lm and text and not prefix.endswith(SPACE):  # a space already ended the last word
            score += lm_weight * lm.step(prefix, SPACE)
        if pattern is not None and not matches(pattern, text):
            continue
        out.append(Candidate(text, score))
    out.sort(key=lambda c: -c.score)
    # the line has ink: reading nothing is never the answer while any reading is left
    return [c for c in out if c.text] or out


def ctc_log_likelihood(log_probs: np.ndarray, texts: list[str], classes: list[str]) -> np.ndarray:
    """log P(text | line) for each text, summed over all of its CTC alignments: one batched ctc_loss."""
    targets = [classes_of(text, classes) for text in texts]
    readable = np.array([bool(t) and None not in t for t in targets])
    targets = [t if ok else [0] for t, ok in zip(targets, readable)]
    steps, n = len(log_probs), len(texts)
    # masked classes carry -1e30; ctc_loss sums in float32, where that is -inf and inf - inf a NaN
    x = torch.from_numpy(np.maximum(log_probs, -1e4).astype(np.float32))[:, None].expand(steps, n, -1)
    nll = F.ctc_loss(x, torch.tensor([k for t in targets for k in t], dtype=torch.long),
                     torch.full((n,), steps, dtype=torch.long),
                     torch.tensor([len(t) for t in targets], dtype=torch.long), blank=len(classes), reduction="none")
    return np.where(readable, -nll.double().numpy(), -np.inf)


def rescore(log_probs: np.ndarray, candidates: list[Candidate], classes: list[str], lm: WordModel,
            lm_weight: float, pattern=None, deadline: float | None = None) -> list[Candidate]:
    """The beam's candidates, and the best one with each word outside the lexicon replaced by a near word of it
    (as written, Capitalised, in capitals), and with its spaces mended (respaced), each scored whole: CTC
    log-likelihood + lm_weight × context; as many variants as RESCORE_CELLS allows, within the deadline
    (time.monotonic())."""
    if not candidates or lm is None or lm_weight <= 0:
        return candidates
    texts = dict.fromkeys(c.text for c in candidates)
    # each reading costs its CTC lattice: steps × (2 × characters + 1); a variant is an edit or two longer at most
    most = max(len(texts), RESCORE_CELLS // (len(log_probs) * (2 * len(candidates[0].text) + 5)))
    best = candidates[0].text.split(SPACE)
    mended = respaced(best, lm)
    texts.update(dict.fromkeys(SPACE.join(words) for words, _ in mended))
    # near words: of each word of the best reading, and of the word each join made (TELEGR PH -> TELEGRPH)
    for words, i in [(best, i) for i in range(len(best))] + [(w, i) for w, i in mended if i is not None]:
        word = words[i]
        if len(word) < 2 or not word.isalpha() or lm.knows(word) or len(texts) >= most:
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise OverBudget("reading this image took longer than its time budget")
        for near in lm.near(word):
            for form in (near, near.capitalize(), near.upper()):
                k = classes_of(form, classes)
                if None not in k:  # a letter the model has no class for cannot be what it read
                    texts[SPACE.join(words[:i] + ["".join(classes[j] for j in k)] + words[i + 1:])] = None
    if pattern is not None:
        texts = {t: None for t in texts if matches(pattern, t)}
    texts = list(texts)[:most]
    if not texts:
        return candidates
    ctc = ctc_log_likelihood(log_probs, texts, classes)
    out = [Candidate(t, float(c + lm_weight * lm.score(t))) for t, c in zip(texts, ctc) if np.isfinite(c)]
    return sorted(out, key=lambda c: -c.score) or candidates


def respaced(words: list[str], lm: WordModel) -> list[tuple[list[str], int | None]]:
    """The reading with a space taken out where two neighbours, one of them not a word, make one word or nearly
    ("TELEGR PH"; the joined word's near words are tried next), and put in where a word outside the lexicon
    splits into two words ("OPENHOUSE"): (words, the index of the word joined, or None). Beam search settles each
    space as it goes, and a gap a little wider or narrower than the writer's others splits or joins words."""
    out: list[tuple[list[str], int | None]] = []
    for i in range(len(words) - 1):
        a, b = words[i], words[i + 1]
        if (a + b).isalpha() and not (lm.knows(a) and lm.knows(b)):
            out.append((words[:i] + [a + b] + words[i + 2:], i))
    for i, word in enumerate(words):
        if len(word) >= 4 and word.isalpha() and not lm.knows(word):
            out += [(words[:i] + [word[:k], word[k:]] + words[i + 1:], None) for k in range(1, len(word))
                    if lm.knows(word[:k]) and lm.knows(word[k:])]
    return out


# ------------------------------------------------------------------------------------------------- alignment
def align(log_probs: np.ndarray, targets: list[int], blank: int) -> list[tuple[int, int]]:
    """The most probable CTC alignment (Viterbi) of a known text: for each of its characters, the steps
    [first, last] where it is emitted."""
    if not targets:
        return []
    ext = [blank]
    for k in targets:
        ext += [k, blank]
    S, T = len(ext), len(log_probs)
    score = np.full((T, S), NEG)
    back = np.zeros((T, S), dtype=np.int64)
    score[0, 0] = log_probs[0, blank]
    score[0, 1] = log_probs[0, ext[1]]
    ext_arr = np.array(ext)
    skip = np.zeros(S, dtype=bool)  # s-2 -> s allowed: s is a character different from the one before
    skip[2:] = (ext_arr[2:] != blank) & (ext_arr[2:] != ext_arr[:-2])
    for t in range(1, T):
        prev = score[t - 1]
        stay, step = prev, np.concatenate([[NEG], prev[:-1]])
        jump = np.where(skip, np.concatenate([[NEG, NEG], prev[:-2]]), NEG)
        choices = np.stack([stay, step, jump])
        best = choices.argmax(axis=0)
        score[t] = choices[best, np.arange(S)] + log_probs[t, ext_arr]
        back[t] = best
    s = S - 1 if score[-1, S - 1] >= score[-1, S - 2] else S - 2
    spans: dict[int, list[int]] = {}
    for t in range(T - 1, -1, -1):
        if s % 2 == 1:
            spans.setdefault(s // 2, [t, t])[0] = t
        s -= back[t, s]
    return [tuple(spans.get(i, (0, 0))) for i in range(len(targets))]


def restore_case(text: str, classes: list[str]) -> str:
    """Merged classes answer in capitals (ByMerge's "O" for o and O); within a word whose unmerged letters are
    mostly lowercase, they are written lowercase too ("bOOK" -> "book", "BOOK" stays)."""
    own = set(classes)
    words = []
    for word in text.split(SPACE):
        lower = sum(c.islower() for c in word)
        upper = sum(c.isupper() and c.lower() in own for c in word)  # capitals whose lowercase has its own class
        if lower > upper:
            word = "".join(c.lower() if c.isupper() and c.lower() not in own else c for c in word)
        words.append(word)
    return SPACE.join(words)
