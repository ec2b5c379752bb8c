"""Builders shared by the evaluation tests: tiny random LMs and miniature copies of the released benchmark
layouts (sLM21 gold.csv + wavs, spoken / topic StoryCloze, SALMon), spoken by eSpeak NG."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hf_slm.data.tokens import vocab_size
from hf_slm.tts import EspeakVoice

SR = 16000
VOICES = {"Alice": "en-us", "Bob": "en-us+m3"}

# sBLIMP-like minimal pairs: (type, subtype, grammatical, ungrammatical)
SYNTACTIC = [
    ("anaphor_agreement", "anaphor_gender_agreement", "the girl saw herself", "the girl saw himself"),
    ("anaphor_agreement", "anaphor_number_agreement", "the boys hurt themselves", "the boys hurt himself"),
    ("filler_gap", "wh_questions_object_gap", "what did the cat eat", "what did the cat eat the fish"),
]
LEXICAL = [("house", "hauze"), ("water", "wotter")]
STORIES = [
    ("1a2b", "Tom went to the shop. He wanted milk.", "He bought some milk.", "He flew to the moon."),
    ("3c4d", "Ann had a test. She studied all night.", "She passed the test.", "She ate a red car."),
]


def tiny_llama(n_units: int, seed: int = 0, context: int = 512, vocab: int | None = None) -> LlamaForCausalLM:
    """A one-layer random Llama over contract 2's vocabulary (or ``vocab``)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab or vocab_size(n_units), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
    )
    return LlamaForCausalLM(config).eval()


def speak(text: str, voice: str = "en-us") -> np.ndarray:
    wave, sr = EspeakVoice(voice).synthesize(text)
    from hf_slm.units import resample_wave

    return resample_wave(wave, sr, SR)


def write_wav(path: Path, wave: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, SR, subtype="PCM_16")


def write_zerospeech(root: Path) -> dict[str, list[dict]]:
    """``root/syntactic/dev`` and ``root/lexical/dev`` in sLM21's layout: gold.csv + <filename>.wav.

    Broken on purpose: one syntactic gold row has no wav (missing_audio; its partner becomes an
    incomplete_item), one wav is not in the gold (not_in_gold), one lexical wav is corrupt (corrupt; its
    partner becomes an incomplete_item).
    """
    gold: dict[str, list[dict]] = {"syntactic": [], "lexical": []}
    n = 0
    for pid, (typ, sub, good, bad) in enumerate(SYNTACTIC):
        for voice, spec in VOICES.items():
            for correct, text in ((1, good), (0, bad)):
                name = f"s{n:03d}"
                n += 1
                gold["syntactic"].append({"id": pid, "filename": name, "voice": voice, "type": typ, "subtype": sub,
                                          "correct": correct, "transcription": text})
                write_wav(root / "syntactic" / "dev" / f"{name}.wav", speak(text, spec))
    for pid, (word, nonword) in enumerate(LEXICAL):
        for voice, spec in VOICES.items():
            for correct, text in ((1, word), (0, nonword)):
                name = f"w{n:03d}"
                n += 1
                gold["lexical"].append({"id": pid, "filename": name, "voice": voice, "frequency": 10 * (pid + 1),
                                        "word": text if correct else "", "phones": " ".join(text), "length": len(text),
                                        "correct": correct})
                write_wav(root / "lexical" / "dev" / f"{name}.wav", speak(text, spec))
    (root / "syntactic" / "dev" / gold["syntactic"][-1]["filename"]).with_suffix(".wav").unlink()
    write_wav(root / "syntactic" / "dev" / "stray.wav", speak("not listed"))
    (root / "lexical" / "dev" / f"{gold['lexical'][0]['filename']}.wav").write_bytes(b"RIFF not really a wav")
    columns = {"syntactic": ["id", "filename", "voice", "type", "subtype", "correct", "transcription"],
               "lexical": ["id", "filename", "voice", "frequency", "word", "phones", "length", "correct"]}
    for task, rows in gold.items():
        with (root / task / "dev" / "gold.csv").open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns[task])
            writer.writeheader()
            writer.writerows(rows)
    return gold


def write_storycloze(folder: Path, topic: bool = False) -> None:
    """Hassid et al.'s layout: <2k>_<story>_correct.wav and <2k+1>_<story>_incorrect.wav, whole stories."""
    for k, (story, prompt, right, wrong) in enumerate(STORIES):
        negative = STORIES[(k + 1) % len(STORIES)][2] if topic else wrong
        write_wav(folder / f"{2 * k}_{story}_correct.wav", speak(f"{prompt} {right}"))
        write_wav(folder / f"{2 * k + 1}_{story}_incorrect.wav", speak(f"{prompt} {negative}"))
    write_wav(folder / "readme_intro.wav", speak("hello"))


def write_salmon(root: Path) -> None:
    """SALMon's layout: <part>/sample_<i>_<k>.wav, k = 0 the consistent recording; one sample has two negatives."""
    for part, voices in (("speaker_consistency", ("en-us", "en-us+m3", "en-us+f2")), ("gender_consistency",
                                                                                     ("en-us", "en-us+f3"))):
        for i in range(2):
            for k, voice in enumerate(voices if i == 0 else voices[:2]):
                write_wav(root / part / f"sample_{i}_{k}.wav", speak(f"the weather is nice today number {i}", voice))
