"""hf-slm generate: KV-cached sampling of units after a prompt, stopping at EOS, vocoded to a WAV; the HTML
players for the report."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import _tts_helpers as helpers
import numpy as np
import pytest
import soundfile as sf
import torch

from hf_slm.cli import main
from hf_slm.evaluation.generate import continuations_html, generate_continuations, generate_units

K = 12  # units of the tiny vocoder; EOS = 12, pad = 13
SUCC = {K: 3, 3: 5, 5: 7, 7: K, 1: 2, 2: 3}  # next unit after each unit (all others: EOS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def chain_model(path: Path) -> Path:
    """A 1-layer Llama whose greedy next unit is SUCC[current]: the layers add nothing (zero output projections)
    and the head reads the current unit's one-hot embedding."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=K + 2, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                         bos_token_id=K, eos_token_id=K, pad_token_id=K + 1)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.norm.weight.fill_(1.0)
        model.model.embed_tokens.weight[: K + 2, : K + 2] = torch.eye(K + 2)
        for unit in range(K + 1):
            model.lm_head.weight[SUCC.get(unit, K), unit] = 10.0
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    ckpt, cfg, _ = helpers.twist_layout_checkpoint(root / "twist")
    from hf_slm.tts.vocoder import convert_twist_checkpoint

    return chain_model(root / "lm"), convert_twist_checkpoint(ckpt, cfg, root / "vocoder")


def test_generate_follows_the_model_and_stops_at_eos(assets):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(assets[0]).eval()
    units, eos = generate_units(model, [], K, max_new_units=20, temperature=0)
    assert units.tolist() == [3, 5, 7] and eos  # from [EOS]: a fresh utterance, then EOS ends it
    units, eos = generate_units(model, [1], K, max_new_units=20, temperature=1.0, top_k=1, seed=3)
    assert units.tolist() == [2, 3, 5, 7] and eos  # top-1 sampling = greedy
    units, eos = generate_units(model, [1], K, max_new_units=2, temperature=0)
    assert units.tolist() == [2, 3] and not eos
    with pytest.raises(ValueError, match=r"prompt units must be in 0\.\.11"):
        generate_units(model, [12], K)


def test_cli_writes_prompt_and_continuation_through_the_vocoder(assets, tmp_path):
    from hf_slm.tts.vocoder import UnitVocoder

    model, vocoder_dir = assets
    out = tmp_path / "out.wav"
    code = main(["generate", str(model), "--prompt-units", "1 2", "--vocoder", str(vocoder_dir),
                 "--temperature", "0", "--max-new-units", "10", "-o", str(out)])
    assert code == 0
    assert out.with_suffix(".units.txt").read_text() == "prompt: 1 2\ncontinuation: 3 5 7\n"
    wave, sr = sf.read(out)
    expected = UnitVocoder.from_pretrained(vocoder_dir)([1, 2, 3, 5, 7])
    assert sr == 16000 and len(wave) == len(expected)
    np.testing.assert_allclose(wave, expected, atol=2 / 32768)
    only = tmp_path / "only.wav"
    assert main(["generate", str(model), "--prompt-units", "1 2", "--vocoder", str(vocoder_dir), "--temperature",
                 "0", "--continuation-only", "-o", str(only)]) == 0
    assert len(sf.read(only)[0]) == len(UnitVocoder.from_pretrained(vocoder_dir)([3, 5, 7]))


def test_cli_usage_errors_exit_with_code_2(assets, tmp_path, capsys):
    model, vocoder_dir = assets
    assert main(["generate", str(model), "--prompt-audio", "x.wav", "--vocoder", str(vocoder_dir),
                 "-o", str(tmp_path / "o.wav")]) == 2
    assert "need --tokenizer" in capsys.readouterr().err
    assert main(["generate", str(model), "--prompt-units", "1 x", "--vocoder", str(vocoder_dir),
                 "-o", str(tmp_path / "o.wav")]) == 2
    assert main(["generate", str(model), "--vocoder", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o.wav")]) == 2


def test_continuations_become_embedded_audio_players(assets, tmp_path):
    from transformers import AutoModelForCausalLM

    from hf_slm.evaluation.generate import write_continuations
    from hf_slm.tts.vocoder import UnitVocoder

    model = AutoModelForCausalLM.from_pretrained(assets[0]).eval()
    vocoder = UnitVocoder.from_pretrained(assets[1])
    items = generate_continuations(model, {"a<b": [1], "empty": []}, vocoder, temperature=0)
    assert [it.units.tolist() for it in items] == [[2, 3, 5, 7], [3, 5, 7]]
    html = write_continuations(items, tmp_path / "audio", title="demo-l", note="CodeHiFiGAN (random weights)")
    assert (tmp_path / "audio" / "a_b.continuation.wav").is_file() and "a&lt;b" in html and "<h3>demo-l</h3>" in html
    players = re.findall(r'src="data:audio/wav;base64,([^"]+)"', html)
    assert len(players) == 3  # two continuations + one prompt (the other prompt is empty)
    wave, sr = sf.read(io.BytesIO(base64.b64decode(players[1])))
    assert sr == 16000 and len(wave) == len(vocoder([2, 3, 5, 7]))
    assert continuations_html(items) == html.replace("<h3>demo-l</h3>", "").replace(
        "<p><em>CodeHiFiGAN (random weights)</em></p>", "")
