"""An offline intelligibility judge: pocketsphinx transcribes 16 kHz speech, jiwer scores the word error rate.

Two modes:

* open vocabulary (default): pocketsphinx's US-English acoustic model with its general trigram LM, as shipped
  in the wheel. This is what ``bench/bench_tts.py`` reports; it is a weak recogniser (CMU Sphinx, 2015-era
  HMMs), so absolute WERs are high even for clean speech -- compare voices, not against published ASR WERs.
* closed vocabulary (``vocabulary=[...]``): a JSGF grammar that accepts any sequence of the given words. The
  search is far smaller (fast, and free of LM bias), so it measures whether each spoken word is recognisable
  among the others: the mode for regression tests of a voice on a fixed sentence set.

References and hypotheses are compared after :func:`wer_normalize` (our TTS normaliser, lower case, no
punctuation), so "3" and "three" agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .normalize import normalize_text

SAMPLE_RATE = 16000
_NON_WORD = re.compile(r"[^a-z' ]+")


def wer_normalize(text: str) -> str:
    """Lower-case words, numbers spelled out, punctuation dropped (hyphens split words)."""
    text = normalize_text(text).lower().replace("-", " ")
    return " ".join(_NON_WORD.sub(" ", text).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (jiwer: total edits / total reference words) after :func:`wer_normalize`."""
    import jiwer

    refs = [wer_normalize(r) for r in references]
    hyps = [wer_normalize(h) for h in hypotheses]
    if not any(refs):
        raise ValueError("the references hold no words")
    kept = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    return float(jiwer.wer([r for r, _ in kept], [h for _, h in kept]))


@dataclass
class JudgeResult:
    """Transcripts and the corpus WER of one voice on a sentence set."""

    wer: float
    references: list[str]
    hypotheses: list[str]


class PocketsphinxJudge:
    """Transcribe 16 kHz mono speech with pocketsphinx (en-us model shipped in the wheel; nothing downloaded).

    vocabulary: words of a closed-vocabulary grammar (see the module docstring); words missing from the
    pronouncing dictionary raise ValueError naming them.
    """

    def __init__(self, vocabulary: Iterable[str] | None = None) -> None:
        from pocketsphinx import Decoder

        # A word-loop grammar needs no wide beams: these cut decoding time ~4x at the same WER on our voices.
        beams = {} if vocabulary is None else {"beam": 1e-30, "wbeam": 1e-20, "pbeam": 1e-30}
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **beams)
        self.vocabulary = None
        if vocabulary is not None:
            words = sorted({w for text in vocabulary for w in wer_normalize(text).split()})
            missing = [w for w in words if self._decoder.lookup_word(w) is None]
            if missing:
                raise ValueError(f"words not in pocketsphinx's dictionary: {missing}")
            if not words:
                raise ValueError("an empty vocabulary")
            grammar = "#JSGF V1.0;\ngrammar words;\npublic <utterance> = ( " + " | ".join(words) + " )+ ;\n"
            self._decoder.add_jsgf_string("words", grammar)
            self._decoder.activate_search("words")
            self.vocabulary = words

    def transcribe(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        """The recognised words of one utterance (empty string when nothing was recognised)."""
        if sample_rate != SAMPLE_RATE:
            from .pipeline import resample

            wave = resample(wave, sample_rate, SAMPLE_RATE)
        pcm = (np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def judge(self, voice, sentences: Sequence[str]) -> JudgeResult:
        """Speak ``sentences`` with ``voice`` (anything with ``synthesize(text) -> (wave, rate)``), transcribe,
        and score."""
        hyps = [self.transcribe(*voice.synthesize(s)) for s in sentences]
        return JudgeResult(word_error_rate(sentences, hyps), list(sentences), hyps)


# A fixed sentence set: short TinyStories-style sentences with common words (all in the CMU dictionary).
SENTENCES = (
    "The cat sat on the mat.",
    "She went to the park with her dog.",
    "He likes to eat red apples.",
    "The sun is warm today.",
    "They played a game in the garden.",
    "Tom found a big blue ball.",
    "The little bird sang a happy song.",
    "Mom baked a cake for the party.",
)


def resynthesis_check(tokenizer, vocoder, voice, sentences: Sequence[str] = SENTENCES,
                      judge: PocketsphinxJudge | None = None) -> tuple[JudgeResult, JudgeResult]:
    """How much a tokenizer + vocoder lose: (WER of ``voice`` itself, WER after audio -> units -> vocoder).

    ``voice`` speaks at the tokenizer's rate (a ``TTSPipeline``); ``vocoder`` is a callable ``units -> wave``
    with ``sample_rate`` (``UnitVocoder``, ``GriffinLimVocoder``). Deduplicated units are vocoded with their
    durations when the vocoder takes them, so only the unit inventory is judged.
    """
    judge = judge or PocketsphinxJudge()
    waves = [voice.synthesize(s)[0] for s in sentences]
    direct = [judge.transcribe(w, tokenizer.sample_rate) for w in waves]
    resynth = []
    for wave in waves:
        seq = tokenizer.encode(wave)
        resynth.append(judge.transcribe(vocoder(seq.units, seq.durations), vocoder.sample_rate))
    return (JudgeResult(word_error_rate(sentences, direct), list(sentences), direct),
            JudgeResult(word_error_rate(sentences, resynth), list(sentences), resynth))
