"""Tiny random-weight TTS models saved to disk (loaded back with ``from_pretrained``) and the NLTK data g2p-en
needs, made here: nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# A few CMU dictionary entries (NLTK corpus format: word, variant, phones); other words go through g2p-en's
# own neural model, which ships with the package.
CMUDICT = """\
a 1 AH0
cat 1 K AE1 T
dog 1 D AO1 G
the 1 DH AH0
sat 1 S AE1 T
ran 1 R AE1 N
"""
TAGGED = [
    [("The", "DT"), ("cat", "NN"), ("sat", "VBD"), ("on", "IN"), ("the", "DT"), ("mat", "NN"), (".", ".")],
    [("A", "DT"), ("dog", "NN"), ("ran", "VBD"), ("home", "NN"), ("quickly", "RB"), (".", ".")],
    [("She", "PRP"), ("reads", "VBZ"), ("a", "DT"), ("red", "JJ"), ("book", "NN"), (".", ".")],
]


def make_nltk_data(folder: Path) -> Path:
    """An NLTK data folder with a small ``cmudict`` and a perceptron tagger trained on three sentences."""
    from nltk.tag.perceptron import PerceptronTagger

    corpus = folder / "corpora" / "cmudict"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "cmudict").write_text(CMUDICT)
    (corpus / "README").write_text("test subset\n")
    tagger_dir = folder / "taggers" / "averaged_perceptron_tagger_eng"
    tagger_dir.mkdir(parents=True, exist_ok=True)
    tagger = PerceptronTagger(load=False)
    tagger.train(TAGGED, nr_iter=2)
    for params, name in zip(tagger.encode_json_obj(), tagger.param_files("eng"), strict=True):
        (tagger_dir / name).write_text(json.dumps(params))
    return folder


def tiny_fastspeech2(folder: Path) -> Path:
    """FastSpeech2ConformerWithHifiGan (random, ~60k parameters) + its phoneme tokenizer in one folder."""
    from transformers import (
        FastSpeech2ConformerConfig,
        FastSpeech2ConformerHifiGanConfig,
        FastSpeech2ConformerTokenizer,
        FastSpeech2ConformerWithHifiGan,
        FastSpeech2ConformerWithHifiGanConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    from hf_slm.tts.backends import import_g2p_en

    phonemes = ["<blank>", "<unk>", *import_g2p_en().G2p().phonemes[4:], ",", ".", "?", "!", "<sos/eos>"]
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(phonemes)}))
    FastSpeech2ConformerTokenizer(vocab_file=str(folder / "vocab.json")).save_pretrained(folder)
    model_config = FastSpeech2ConformerConfig(
        hidden_size=16, vocab_size=len(phonemes), num_mel_bins=8, encoder_layers=1, decoder_layers=1,
        encoder_linear_units=16, decoder_linear_units=16, speech_decoder_postnet_layers=1,
        speech_decoder_postnet_units=8, duration_predictor_layers=1, duration_predictor_channels=8,
        energy_predictor_layers=1, energy_predictor_channels=8, pitch_predictor_layers=1,
        pitch_predictor_channels=8, encoder_kernel_size=3, decoder_kernel_size=3,
    )
    vocoder_config = FastSpeech2ConformerHifiGanConfig(
        model_in_dim=8, upsample_initial_channel=16, upsample_rates=[8, 4], upsample_kernel_sizes=[16, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]], sampling_rate=8000,
    )
    torch.manual_seed(0)
    model = FastSpeech2ConformerWithHifiGan(FastSpeech2ConformerWithHifiGanConfig(
        model_config=model_config.to_dict(), vocoder_config=vocoder_config.to_dict()))
    # random duration predictors say "0 frames": bias the log-duration up so every phoneme lasts ~3 frames
    with torch.no_grad():
        model.model.duration_predictor.linear.bias.fill_(1.4)
    model.save_pretrained(folder)
    return folder


VITS_CHARS = list(" abcdefghijklmnopqrstuvwxyz'-.,!?")


def tiny_vits(folder: Path) -> Path:
    """VitsModel (random) + a character VitsTokenizer, 16 kHz."""
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(["<pad>", *VITS_CHARS])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    VitsTokenizer(vocab_file=str(folder / "vocab.json"), pad_token="<pad>", unk_token="<pad>",
                  add_blank=True, normalize=True, phonemize=False).save_pretrained(folder)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=16, flow_size=8,
        spectrogram_bins=9, upsample_initial_channel=16, upsample_rates=[8, 4], upsample_kernel_sizes=[16, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]], duration_predictor_filter_channels=8,
        duration_predictor_num_flows=1, prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1, depth_separable_num_layers=1, sampling_rate=16000,
        use_stochastic_duration_prediction=False, layerdrop=0.0,
    )
    torch.manual_seed(0)
    model = VitsModel(config)
    with torch.no_grad():  # ~3 frames per symbol instead of whatever the random log-durations say
        model.duration_predictor.proj.bias.fill_(1.1)
    model.save_pretrained(folder)
    return folder


BARK_SEMANTIC, BARK_CODEBOOK, BARK_TEXT = 20, 16, 64


def tiny_bark(folder: Path, presets: tuple[str, ...] = ("v2/en_speaker_0", "v2/en_speaker_1")) -> Path:
    """BarkModel (random sub-models + a tiny Encodec) + BarkProcessor with a small BERT tokenizer and speaker
    presets, 24 kHz. Semantic generation is capped at 8 tokens to keep the test fast (pass
    ``semantic_min_new_tokens=8`` so that a random model does not stop at once)."""
    from transformers import (
        BarkCoarseConfig,
        BarkConfig,
        BarkFineConfig,
        BarkModel,
        BarkProcessor,
        BarkSemanticConfig,
        BertTokenizer,
        EncodecConfig,
        GenerationConfig,
    )
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig,
        BarkFineGenerationConfig,
        BarkGenerationConfig,
        BarkSemanticGenerationConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    s, c, t = BARK_SEMANTIC, BARK_CODEBOOK, BARK_TEXT
    off = s + 4
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.,!?'",
             *[f"##{x}" for x in "abcdefghijklmnopqrstuvwxyz"]][:t]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    semantic_gen = BarkSemanticGenerationConfig(
        eos_token_id=s, semantic_vocab_size=s, text_encoding_offset=off, text_pad_token=off + t,
        semantic_infer_token=off + t + 1, semantic_pad_token=s, max_input_semantic_length=32, max_new_tokens=8)
    coarse_gen = BarkCoarseGenerationConfig(
        coarse_semantic_pad_token=s + 2 * c, coarse_infer_token=s + 2 * c + 2, n_coarse_codebooks=2,
        max_coarse_input_length=16, max_coarse_history=30, sliding_window_len=16)
    fine_gen = BarkFineGenerationConfig(max_fine_history_length=16, max_fine_input_length=32, n_fine_codebooks=8)
    common = dict(hidden_size=16, num_layers=1, num_heads=2, block_size=64)
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(vocab_size=off + t + 2, output_vocab_size=s + 1, **common).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(vocab_size=s + 2 * c + 3, output_vocab_size=s + 2 * c + 3,
                                                 **common).to_dict(),
        fine_acoustics_config=BarkFineConfig(vocab_size=c + 1, output_vocab_size=c + 1, n_codes_total=8,
                                             n_codes_given=1, **common).to_dict(),
        codec_config=EncodecConfig(target_bandwidths=[6.0], sampling_rate=24000, codebook_size=c, hidden_size=8,
                                   num_filters=2, num_residual_layers=1, num_lstm_layers=1,
                                   codebook_dim=8, kernel_size=3, last_kernel_size=3).to_dict(),
    )
    torch.manual_seed(0)
    model = BarkModel(config)
    with torch.no_grad():  # Encodec's codebooks start at zero: without this every code decodes to the same audio
        for layer in model.codec_model.quantizer.layers:
            layer.codebook.embed.normal_()
    bark_gen = BarkGenerationConfig(semantic_config=semantic_gen.to_dict(),
                                    coarse_acoustics_config=coarse_gen.to_dict(),
                                    fine_acoustics_config=fine_gen.to_dict(), sample_rate=24000, codebook_size=c)
    # BarkGenerationConfig cannot save itself (transformers 5): store its fields in a plain GenerationConfig
    model.generation_config = GenerationConfig(**bark_gen.to_dict())
    model.save_pretrained(folder)
    rng = np.random.default_rng(0)
    embeddings = {"repo_or_path": str(folder)}
    for k, name in enumerate(presets):
        arrays = {"semantic_prompt": rng.integers(0, s, 8 + k), "coarse_prompt": rng.integers(0, c, (2, 12)),
                  "fine_prompt": rng.integers(0, c, (8, 12))}
        embeddings[name] = {}
        for key, array in arrays.items():
            path = folder / "speaker_embeddings" / f"{name.replace('/', '_')}_{key}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
            embeddings[name][key] = str(path.relative_to(folder))
    (folder / "speaker_embeddings_path.json").write_text(json.dumps(embeddings))
    BarkProcessor(tokenizer=tokenizer).tokenizer.save_pretrained(folder)
    return folder


TWIST_TINY = {  # a textlesslib CodeHiFiGAN config in the published layout, tiny sizes
    "resblock": "1", "upsample_rates": [5, 4], "upsample_kernel_sizes": [11, 8], "upsample_initial_channel": 16,
    "resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3], [1, 3]], "num_embeddings": 12,
    "embedding_dim": 8, "model_in_dim": 8, "segment_size": 8960, "code_hop_size": 20, "f0": False,
    "num_mels": 80, "num_freq": 1025, "n_fft": 1024, "hop_size": 256, "win_size": 1024,
    "dur_prediction_weight": 1.0, "sampling_rate": 16000,
    "dur_predictor_params": {"encoder_embed_dim": 8, "var_pred_hidden_dim": 8, "var_pred_kernel_size": 3,
                             "var_pred_dropout": 0.5},
}


def twist_layout_checkpoint(folder: Path, seed: int = 0):
    """A random vocoder written in the TWIST checkpoint layout (``{"generator": state dict}`` with textlesslib
    parameter names and weight-norm ``weight_g`` / ``weight_v`` pairs) + its JSON config; returns (checkpoint,
    config, the SeamlessM4TCodeHifiGan whose weights it holds)."""
    from transformers import SeamlessM4TCodeHifiGan

    from hf_slm.tts.vocoder import TWIST_CHECKPOINT, TWIST_CONFIG, twist_config_to_hf

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = SeamlessM4TCodeHifiGan(twist_config_to_hf(TWIST_TINY)).eval()
    renames = [("unit_embedding.", "dict."), ("dur_predictor.conv1.", "dur_predictor.conv1.0."),
               ("dur_predictor.conv2.", "dur_predictor.conv2.0."), ("hifi_gan.conv_pre.", "conv_pre."),
               ("hifi_gan.upsampler.", "ups."), ("hifi_gan.resblocks.", "resblocks."),
               ("hifi_gan.conv_post.", "conv_post.")]
    generator = {}
    gen = torch.Generator().manual_seed(seed + 1)
    for name, tensor in model.state_dict().items():
        if name.startswith(("speaker_embedding", "language_embedding")):
            continue
        new = next((dst + name[len(src):] for src, dst in renames if name.startswith(src)), name)
        if new.endswith(".weight") and new.startswith(("conv_pre", "ups", "resblocks", "conv_post")):
            g = tensor.flatten(1).norm(dim=1).view(-1, *([1] * (tensor.dim() - 1)))
            scale = 0.5 + torch.rand(g.shape, generator=gen)  # v is w up to a positive factor per channel
            generator[new[: -len("weight")] + "weight_g"] = g.clone()
            generator[new[: -len("weight")] + "weight_v"] = tensor * scale
        else:
            generator[new] = tensor.clone()
    ckpt, cfg = folder / TWIST_CHECKPOINT, folder / TWIST_CONFIG
    torch.save({"generator": generator, "steps": 1000}, ckpt)
    cfg.write_text(json.dumps(TWIST_TINY))
    return ckpt, cfg, model
