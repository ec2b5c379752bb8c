"""Text normalisation before synthesis, and splitting of over-long texts at sentence boundaries.

Spelling out is done by packages: ``unidecode`` folds unicode to ASCII (curly quotes, dashes, accents,
ellipses) and ``num2words`` verbalises numbers (cardinals, ordinals, years, decimals, currency). This module
only finds the spans to verbalise. Abbreviations are expanded from a short table of English titles and
units (data, not rules), since neither package covers them.

TTS front ends differ (FastSpeech2's g2p-en spells digits itself, eSpeak reads "Dr." right, VITS/MMS has no
digits in its vocabulary at all), so the pipeline normalises once, the same way, for every backend.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "prof": "professor",
    "jr": "junior", "sr": "senior", "mt": "mount", "etc": "et cetera", "vs": "versus", "approx": "approximately",
    "no": "number", "ft": "feet", "lb": "pounds", "lbs": "pounds", "oz": "ounces", "km": "kilometers",
    "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "hr": "hours", "min": "minutes",
}
SYMBOLS = {"%": " percent", "&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number "}
CURRENCIES = {"$": ("USD", "dollars"), "€": ("EUR", "euros"), "£": ("GBP", "pounds")}

_ABBREVIATION = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\.(?=\s|$)", re.IGNORECASE)
_NO_BEFORE_NUMBER = re.compile(r"\bno\.(?=\s*\d)", re.IGNORECASE)
_CURRENCY = re.compile(r"([$€£])\s?(\d[\d,]*(?:\.\d+)?)")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[1-9]\d\d|20\d\d)\b(?!\.\d)")
_DECIMAL = re.compile(r"\b\d[\d,]*\.\d+\b")
_NUMBER = re.compile(r"\b\d[\d,]*\b")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def _words(number: str, **kwargs) -> str:
    from num2words import num2words

    return num2words(number.replace(",", ""), lang="en", **kwargs).replace(",", "")


def _currency(match: re.Match) -> str:
    code, name = CURRENCIES[match.group(1)]
    amount = match.group(2).replace(",", "")
    if "." not in amount:
        return f"{_words(amount)} {name}"
    return _words(amount, to="currency", currency=code)


def normalize_text(text: str, numbers: bool = True, abbreviations: bool = True) -> str:
    """Speakable ASCII text: unicode folded, abbreviations, currency, ordinals, years and numbers spelled out.

    >>> normalize_text("Dr. Smith paid $3.50 on May 2nd, 1999 — “twice”.")
    'doctor Smith paid three dollars fifty cents on May second, nineteen ninety-nine -- "twice".'
    """
    from unidecode import unidecode

    if numbers:
        text = _CURRENCY.sub(_currency, text)  # before unidecode, which spells "€" as "EUR"
    text = unidecode(unicodedata.normalize("NFKC", text))
    if abbreviations:
        text = _NO_BEFORE_NUMBER.sub("number", text)
        text = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    if numbers:
        text = _ORDINAL.sub(lambda m: _words(m.group(1), to="ordinal"), text)
        text = _YEAR.sub(lambda m: _words(m.group(1), to="year"), text)
        text = _DECIMAL.sub(lambda m: _words(m.group(0)), text)
        text = _NUMBER.sub(lambda m: _words(m.group(0)), text)
        for symbol, word in SYMBOLS.items():
            text = text.replace(symbol, word)
    return _SPACES.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, cut after ``.``, ``!`` or ``?`` (and closing quotes) followed by white space."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` in chunks of at most ``max_chars`` characters, cut at sentence boundaries.

    Whole sentences are packed greedily; a single sentence longer than ``max_chars`` is cut at its last
    comma, semicolon or colon that fits, else at a space, else hard.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    chunks: list[str] = []
    for sentence in split_sentences(text):
        for piece in _split_long(sentence, max_chars):
            if chunks and len(chunks[-1]) + 1 + len(piece) <= max_chars:
                chunks[-1] = f"{chunks[-1]} {piece}"
            else:
                chunks.append(piece)
    return chunks


def _split_long(sentence: str, max_chars: int) -> list[str]:
    pieces = []
    while len(sentence) > max_chars:
        head = sentence[: max_chars + 1]
        cut = max(head.rfind(c) for c in ",;:")
        cut = cut + 1 if cut > 0 else head.rfind(" ")
        cut = cut if cut > 0 else max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return pieces


@dataclass
class TextFrontEnd:
    """Normalisation + chunking settings of a synthesis job (recorded in the dataset card)."""

    normalize: bool = True
    max_chars: int = 400

    def chunks(self, text: str) -> list[str]:
        """The pieces a backend is asked to speak for ``text``: those with a letter or digit (none when nothing
        speakable is left, e.g. for "..." or an empty string)."""
        text = normalize_text(text) if self.normalize else _SPACES.sub(" ", text).strip()
        return [c for c in split_text(text, self.max_chars) if any(ch.isalnum() for ch in c)] if text else []
