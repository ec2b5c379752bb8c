"""Unit vocoders: the TWIST checkpoint converter (on a synthetic checkpoint in the published layout), the
SeamlessM4TCodeHifiGan round trip, and Griffin-Lim for log-mel units."""

from __future__ import annotations

import json

import _tts_helpers as helpers
import numpy as np
import pytest
import torch

from hf_slm.tts.vocoder import UnitVocoder, VocoderError, convert_twist_checkpoint, vocode

UNITS = [3, 5, 7, 1, 0, 11, 4]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_twist_checkpoint_converts_to_a_seamless_code_hifigan_with_the_same_output(tmp_path):
    ckpt, cfg, original = helpers.twist_layout_checkpoint(tmp_path / "twist")
    out = convert_twist_checkpoint(ckpt, cfg, tmp_path / "hf")
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    vocoder = UnitVocoder.from_pretrained(out)
    assert vocoder.n_units == 12 and vocoder.sample_rate == 16000
    expected = vocode(original, UNITS)  # the model whose weights were written with weight norm, under old names
    np.testing.assert_allclose(vocoder(UNITS), expected, atol=1e-5)  # weight norm folded right, names mapped
    # given durations replace the predictor: 2 frames of 20 samples per unit
    assert vocoder(UNITS, durations=[2] * len(UNITS)).shape == (2 * 20 * len(UNITS),)
    longer = vocoder(UNITS, durations=[4] * len(UNITS))
    assert longer.shape == (4 * 20 * len(UNITS),)
    vocoder.save_pretrained(tmp_path / "again")
    np.testing.assert_allclose(UnitVocoder.from_pretrained(tmp_path / "again")(UNITS), expected, atol=1e-5)


def test_duration_predictor_sets_the_length(tmp_path):
    ckpt, cfg, original = helpers.twist_layout_checkpoint(tmp_path / "twist")
    with torch.no_grad():
        original.dur_predictor.proj.bias.fill_(np.log(1 + 3))  # exp(log d) - 1 = 3 frames per unit
        original.dur_predictor.proj.weight.zero_()
    assert vocode(original, UNITS).shape == (3 * 20 * len(UNITS),)


def test_bad_checkpoints_and_units_are_clear_errors(tmp_path):
    ckpt, cfg, original = helpers.twist_layout_checkpoint(tmp_path / "twist")
    with pytest.raises(ValueError, match=r"units must be in 0\.\.11"):
        vocode(original, [3, 12])
    multi = tmp_path / "multi.json"
    multi.write_text(json.dumps({**helpers.TWIST_TINY, "multispkr": True}))
    with pytest.raises(VocoderError, match="multispkr"):
        convert_twist_checkpoint(ckpt, multi, tmp_path / "x")
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps({**helpers.TWIST_TINY, "embedding_dim": 16}))
    with pytest.raises(VocoderError, match="must equal embedding_dim"):
        convert_twist_checkpoint(ckpt, wide, tmp_path / "x")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**helpers.TWIST_TINY, "upsample_initial_channel": 32}))
    with pytest.raises(VocoderError, match="shape mismatch"):
        convert_twist_checkpoint(ckpt, other, tmp_path / "x")
    torch.save({"model": {}}, tmp_path / "bad.pt")
    with pytest.raises(VocoderError, match="no 'generator'"):
        convert_twist_checkpoint(tmp_path / "bad.pt", cfg, tmp_path / "x")


def test_griffin_lim_inverts_log_mel_centroids_to_audio_with_the_reference_durations():
    from hf_slm.tts import EspeakVoice, TTSPipeline
    from hf_slm.tts.judge import SENTENCES
    from hf_slm.tts.vocoder import GriffinLimVocoder
    from hf_slm.units import LogMelEncoder, SpeechTokenizer

    voice = TTSPipeline(EspeakVoice("en-us"))
    waves = [voice.synthesize(s)[0] for s in ("The cat sat on the mat.", "She went to the park with her dog.")]
    tok = SpeechTokenizer.fit(LogMelEncoder(), waves, n_units=16, seed=0)
    vocoder = GriffinLimVocoder(tok, waves, n_iter=8)
    seq = tok.encode(waves[0])
    wave = vocoder(seq.units, seq.durations)
    hop = tok.encoder.cfg.hop_length
    assert vocoder.sample_rate == 16000 and abs(len(wave) - seq.n_frames * hop) <= hop
    assert 0.5 < np.abs(wave).max() <= 0.9 + 1e-6
    # without durations each unit lasts its mean run length in the reference: about as long as the original
    free = vocoder(seq.units)
    assert 0.6 < len(free) / len(wave) < 1.6
    # the spectrum follows the units: re-encoding the inversion gives mostly the same units back
    again = tok.encode(wave)
    frames_in = np.repeat(seq.units, seq.durations)
    frames_out = np.repeat(again.units, again.durations)
    n = min(len(frames_in), len(frames_out))
    assert np.mean(frames_in[:n] == frames_out[:n]) > 0.3  # chance is ~1/16
    # the resynthesis check: WER of the voice, then of audio -> units -> Griffin-Lim -> audio
    from hf_slm.tts.judge import PocketsphinxJudge, resynthesis_check

    sentences = ["The cat sat on the mat."]
    direct, resynth = resynthesis_check(tok, vocoder, voice, sentences, PocketsphinxJudge(vocabulary=SENTENCES))
    assert direct.wer <= 0.5 and len(resynth.hypotheses) == 1 and 0 <= resynth.wer <= 2
