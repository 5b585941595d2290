"""Charsets: what the caller knows the writing can be (a postcode is digits, a licence plate uppercase), used to
constrain the model's answer. A charset is a name (NAMES) or the characters themselves ("0123456789ABCDEF"; prefix
"=" to give characters that would read as a name, "=lower"). A class of the model counts when its character is in
the set; a class that stands for both cases (ByMerge merges c and C into "C") counts when either case is.
"""
from __future__ import annotations

import string

import numpy as np

from ..errors import ConfigError

NAMES = {
    "digits": string.digits,
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "letters": string.ascii_letters,
    "alnum": string.digits + string.ascii_letters,
}


def characters(charset: str) -> str:
    """The characters a charset names; an unknown name is an error (a literal set is any other string)."""
    if not isinstance(charset, str) or not charset:
        raise ConfigError(f"charset: expected one of {', '.join(NAMES)} or the characters themselves, "
                          f"found {charset!r}", field="charset")
    if charset.startswith("=") and len(charset) > 1:
        return charset[1:]
    if charset in NAMES:
        return NAMES[charset]
    if charset.isascii() and charset.isalpha() and charset.islower() and len(charset) >= 4:
        raise ConfigError(f"charset {charset!r}: not a name ({', '.join(NAMES)}); to mean these letters "
                          f"themselves, write '={charset}'", field="charset")
    return charset


def allowed(classes: list[str], charset: str | None) -> np.ndarray:
    """A boolean mask over the model's classes: which ones the charset allows (all for None). A charset the model
    cannot produce at all is an error, never an empty answer."""
    if charset is None:
        return np.ones(len(classes), dtype=bool)
    chars = set(characters(charset))
    own = set(classes)
    mask = np.array([c in chars or (c.swapcase() not in own and c.swapcase() in chars) for c in classes])
    if not mask.any():
        raise ConfigError(f"charset {charset!r}: none of its characters is a class of this model "
                          f"(classes: {''.join(classes)})", field="charset")
    return mask


def constrain(probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Probabilities renormalised over the allowed classes (the others 0)."""
    out = np.where(mask, probs, 0.0)
    return out / np.maximum(out.sum(axis=-1, keepdims=True), 1e-30)
