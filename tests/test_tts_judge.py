"""The intelligibility judge: pocketsphinx transcribes our voices on a fixed sentence set; WER bounds as tight as
measured (closed vocabulary, see hf_slm.tts.judge)."""

from __future__ import annotations

import pytest

from hf_slm.tts import EspeakVoice, HibariVoice, TTSPipeline
from hf_slm.tts.judge import SENTENCES, PocketsphinxJudge, word_error_rate

TEST_SENTENCES = SENTENCES[:4]  # 25 words


@pytest.fixture(scope="module")
def judge():
    return PocketsphinxJudge(vocabulary=SENTENCES)


@pytest.fixture(scope="module")
def hibari():
    return TTSPipeline(HibariVoice())


def test_word_error_rate_normalises_before_comparing():
    assert word_error_rate(["He has 3 cats."], ["he has three cats"]) == 0.0
    assert word_error_rate(["the cat sat", "a dog"], ["the hat sat", ""]) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["..."], ["x"])


def test_hibari_is_intelligible(judge, hibari):
    result = judge.judge(hibari, TEST_SENTENCES)
    assert result.wer <= 0.04, result.hypotheses  # measured 0.00 (0 of 25 words wrong)


def test_espeak_is_intelligible_enough(judge):
    result = judge.judge(TTSPipeline(EspeakVoice("en-us")), TEST_SENTENCES)
    # measured 0.48 (12 of 25 words): pocketsphinx's HMMs hear formant synthesis badly, but far from garbage
    assert result.wer <= 0.52, result.hypotheses


def test_garbled_speech_fails_the_judge(judge, hibari):
    sentence = TEST_SENTENCES[1]
    reversed_wave = hibari.synthesize(sentence)[0][::-1].copy()  # the same audio, time-reversed
    hyp = judge.transcribe(reversed_wave)
    assert word_error_rate([sentence], [hyp]) >= 0.7, hyp


def test_unknown_words_in_the_vocabulary_are_named():
    with pytest.raises(ValueError, match="qwxzzy"):
        PocketsphinxJudge(vocabulary=["the qwxzzy sat"])
