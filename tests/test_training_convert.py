"""``hf-slm convert``: checkpoints of the authors' code (tiagoCuervo/slm_scaling) -> ``LlamaForCausalLM``.

The fixtures write tiny checkpoints in their two layouts from plain tensors: the training checkpoint
(``torch.save`` of ``{"format_version", "model", "optimizer", "scaler", "step", "model_args", ...,
"rng_by_rank"}`` with the tied ``tok_embeddings.weight``/``output.weight``) and the native export
(``config.json`` with ``format_version``/``model_args`` + safetensors without ``output.weight``). The logits of
the converted model are compared with an independent forward pass of their architecture (interleaved complex
rotary, SwiGLU, RMSNorm, tied head) computed from the original tensors.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from hf_slm.cli import main
from hf_slm.training import convert as convert_module
from hf_slm.training.convert import ConversionError, convert_checkpoint, permute_rotary

K = 500
VOCAB = K + 2


def their_model_args(**changes) -> dict:
    """``dataclasses.asdict(ModelArgs(...))`` as their trainer stores it, with tiny dimensions."""
    args = dict(dim=32, n_layers=2, n_heads=2, n_kv_heads=None, vocab_size=VOCAB, prefix_vocab_size=None,
                hidden_dim=None, multiple_of=32, norm_eps=1e-5, block_size=2050, dropout=0.0, prefix_pad=None)
    args.update(changes)
    return args


def their_hidden(args: dict) -> int:
    hidden = int(2 * 4 * args["dim"] / 3)
    return args["multiple_of"] * math.ceil(hidden / args["multiple_of"])


def their_state(args: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in their parameter order, the LM head sharing the embedding's storage."""
    g = torch.Generator().manual_seed(seed)
    d, h, f = args["dim"], args["n_heads"], their_hidden(args)
    kv = args["n_kv_heads"] or h
    hd = d // h

    def w(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale / math.sqrt(shape[-1])

    def norm():
        return 1.0 + 0.3 * torch.randn(d, generator=g)

    embed = 0.1 * torch.randn(VOCAB, d, generator=g)  # logits of a few units: fp32 noise stays ~1e-6
    state = {"tok_embeddings.weight": embed}
    for i in range(args["n_layers"]):
        state.update({
            f"layers.{i}.attention.wq.weight": w(h * hd, d, scale=2.0),  # sharp attention: rotary errors show
            f"layers.{i}.attention.wk.weight": w(kv * hd, d, scale=2.0),
            f"layers.{i}.attention.wv.weight": w(kv * hd, d),
            f"layers.{i}.attention.wo.weight": w(d, h * hd),
            f"layers.{i}.feed_forward.w1.weight": w(f, d),
            f"layers.{i}.feed_forward.w2.weight": w(d, f),
            f"layers.{i}.feed_forward.w3.weight": w(f, d),
            f"layers.{i}.attention_norm.weight": norm(),
            f"layers.{i}.ffn_norm.weight": norm(),
        })
    state["norm.weight"] = norm()
    state["output.weight"] = embed  # weight tying: one tensor under both names, as in their state_dict()
    return state


def save_training_checkpoint(path: Path, args: dict, state: dict, prefix: str = "", **extra) -> Path:
    """Write ``state`` the way their ``_save_checkpoint`` does (a pickled dict with optimizer and RNG states)."""
    params = [torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4))]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    rng = np.random.default_rng(0)
    payload = {
        "format_version": 1,
        "model": {prefix + k: v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
        "scaler": {},
        "step": 1321,
        "model_args": args,
        "train_config": {**args, "learning_rate": 5e-4, "output_dir": "out/scaling/tiny"},
        "batch_provenance": {"context_tokens": args["block_size"], "world_size": 1},
        "dataset_fingerprints": {"train": "abc", "validation": "def"},
        "rng_by_rank": [{"global": {"python": random.getstate(), "numpy": np.random.get_state(),
                                    "torch": torch.get_rng_state()},
                         "train": rng.bit_generator.state, "val": rng.bit_generator.state}],
        "world_size": 1,
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def save_native_folder(root: Path, args: dict, state: dict, max_shard_tensors: int | None = None) -> Path:
    """Write ``state`` the way their ``TransformerLM.save_pretrained`` does (tied head stored once)."""
    root.mkdir(parents=True, exist_ok=True)
    config = {"format_version": 1, "model_type": "slm", "architectures": ["TransformerLM"], "model_args": args,
              "torch_dtype": "float32", "tied_weights": ["tok_embeddings.weight", "output.weight"]}
    (root / "config.json").write_text(json.dumps(config))
    tensors = {k: v.contiguous() for k, v in state.items() if k != "output.weight"}
    if max_shard_tensors is None:
        save_file(tensors, root / "model.safetensors", metadata={"format": "pt"})
        return root
    names = list(tensors)
    chunks = [names[i:i + max_shard_tensors] for i in range(0, len(names), max_shard_tensors)]
    weight_map = {}
    for n, chunk in enumerate(chunks, 1):
        shard = f"model-{n:05d}-of-{len(chunks):05d}.safetensors"
        save_file({k: tensors[k] for k in chunk}, root / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(chunk, shard))
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return root


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def reference_logits(state: dict, args: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Their TransformerLM forward, written independently: complex (interleaved) rotary, causal attention.

    Computed in float64 (returned as float32) so that the comparison measures the converted model's error only.
    """
    state = {k: v.double() for k, v in state.items()}
    d, h = args["dim"], args["n_heads"]
    kv = args["n_kv_heads"] or h
    hd, eps = d // h, args["norm_eps"]
    b, t = tokens.shape
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    angles = torch.outer(torch.arange(t, dtype=torch.float64), freqs)
    rot = torch.polar(torch.ones_like(angles), angles)  # [t, hd/2]

    def rotate(x):  # x: [b, t, heads, hd], pairs (2j, 2j+1) are one complex number
        xc = torch.view_as_complex(x.reshape(*x.shape[:-1], hd // 2, 2).contiguous())
        return torch.view_as_real(xc * rot[None, :, None, :]).flatten(-2)

    x = state["tok_embeddings.weight"][tokens]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    for i in range(args["n_layers"]):
        p = f"layers.{i}."
        a = _rms(x, state[p + "attention_norm.weight"], eps)
        q = rotate((a @ state[p + "attention.wq.weight"].T).view(b, t, h, hd))
        k = rotate((a @ state[p + "attention.wk.weight"].T).view(b, t, kv, hd))
        v = (a @ state[p + "attention.wv.weight"].T).view(b, t, kv, hd)
        k, v = k.repeat_interleave(h // kv, dim=2), v.repeat_interleave(h // kv, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        attn = torch.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, t, d)
        x = x + attn @ state[p + "attention.wo.weight"].T
        m = _rms(x, state[p + "ffn_norm.weight"], eps)
        gate = F.silu(m @ state[p + "feed_forward.w1.weight"].T) * (m @ state[p + "feed_forward.w3.weight"].T)
        x = x + gate @ state[p + "feed_forward.w2.weight"].T
    return (_rms(x, state["norm.weight"], eps) @ state["output.weight"].T).float()


TOKENS = torch.tensor([[K, 3, 17, 499, 42, 42, 7, 250, 0, 1, 98, K], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]])


def converted_logits(out: Path) -> torch.Tensor:
    model = LlamaForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        return model(TOKENS).logits


@pytest.mark.parametrize("n_heads,n_kv_heads,prefix", [(2, None, ""), (4, 2, "_orig_mod.")])
def test_training_checkpoint_converts_to_equal_logits(tmp_path, n_heads, n_kv_heads, prefix):
    args = their_model_args(n_heads=n_heads, n_kv_heads=n_kv_heads)
    state = their_state(args)
    src = save_training_checkpoint(tmp_path / "out/run/checkpoint-00001321.pt", args, state, prefix=prefix)

    out = convert_checkpoint(src, tmp_path / "llama")

    expected = reference_logits(state, args, TOKENS)
    torch.testing.assert_close(converted_logits(out), expected, atol=1e-5, rtol=0)
    cfg = LlamaConfig.from_pretrained(out)
    assert (cfg.vocab_size, cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (502, 500, 500, 501)
    assert cfg.max_position_embeddings == 2050 and cfg.tie_word_embeddings is True
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size) == (n_heads, n_kv_heads or
                                                                                         n_heads, 96)
    model = LlamaForCausalLM.from_pretrained(out)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert (model.generation_config.eos_token_id, model.generation_config.pad_token_id) == (500, 501)
    provenance = json.loads((out / "conversion.json").read_text())
    assert provenance["layout"] == "training" and provenance["step"] == 1321


def test_rotary_permutation_is_what_makes_logits_match(tmp_path, monkeypatch):
    """Without the interleaved -> half-split permutation the logits differ: the equality test above has teeth."""
    args = their_model_args()
    state = their_state(args)
    src = save_training_checkpoint(tmp_path / "ckpt.pt", args, state)
    monkeypatch.setattr(convert_module, "permute_rotary", lambda w, n_heads: w)
    out = convert_checkpoint(src, tmp_path / "unpermuted")
    diff = (converted_logits(out) - reference_logits(state, args, TOKENS)).abs().max().item()
    assert diff > 1e-2


def test_permute_rotary_moves_interleaved_pairs_to_halves():
    w = torch.arange(8.0).repeat_interleave(3).view(8, 3)  # row r holds r; 2 heads of head_dim 4
    assert permute_rotary(w, n_heads=2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_native_sharded_folder_converts(tmp_path):
    args = their_model_args()
    state = their_state(args, seed=1)
    src = save_native_folder(tmp_path / "native", args, state, max_shard_tensors=7)
    assert (src / "model.safetensors.index.json").exists() and not (src / "model.safetensors").exists()

    out = convert_checkpoint(src, tmp_path / "llama")

    torch.testing.assert_close(converted_logits(out), reference_logits(state, args, TOKENS), atol=1e-5, rtol=0)
    assert json.loads((out / "conversion.json").read_text())["layout"] == "native"


def test_hub_id_is_downloaded_then_converted(tmp_path, monkeypatch):
    import huggingface_hub

    args = their_model_args()
    state = their_state(args, seed=2)
    native = save_native_folder(tmp_path / "snapshot", args, state)
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append(repo_id)
        return str(native)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    out = convert_checkpoint("tiagoCuervo/gslm-scaling-823m-82b", tmp_path / "llama")
    assert calls == ["tiagoCuervo/gslm-scaling-823m-82b"]
    torch.testing.assert_close(converted_logits(out), reference_logits(state, args, TOKENS), atol=1e-5, rtol=0)


def test_wrong_vocabulary_is_refused_naming_the_file(tmp_path):
    args = their_model_args(vocab_size=501)  # their TrainConfig default: no pad token
    src = save_training_checkpoint(tmp_path / "ckpt.pt", args, {})
    with pytest.raises(ConversionError, match=r"ckpt\.pt: vocab_size 501 != 502"):
        convert_checkpoint(src, tmp_path / "out")


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path):
    args = their_model_args()
    state = their_state(args)
    del state["layers.1.feed_forward.w3.weight"]
    state["layers.0.attention.wk.weight"] = state["layers.0.attention.wk.weight"][:8]
    state["prefix_embeddings.weight"] = torch.zeros(9, 32)
    src = save_training_checkpoint(tmp_path / "broken.pt", args, state)
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(src, tmp_path / "out")
    message = str(err.value)
    assert "broken.pt" in message
    assert "missing keys [layers.1.feed_forward.w3.weight]" in message
    assert "unexpected keys [prefix_embeddings.weight]" in message
    assert "layers.0.attention.wk.weight: (8, 32) != expected (32, 32)" in message
    assert not (tmp_path / "out").exists()  # nothing is written for a refused checkpoint


def test_lone_safetensors_file_is_refused(tmp_path):
    folder = save_native_folder(tmp_path / "native", their_model_args(), their_state(their_model_args()))
    with pytest.raises(ConversionError, match=r"model\.safetensors: a lone safetensors file has no model_args"):
        convert_checkpoint(folder / "model.safetensors", tmp_path / "out")


def test_untied_head_is_refused(tmp_path):
    args = their_model_args()
    state = their_state(args)
    state["output.weight"] = state["output.weight"] + 1.0
    src = save_training_checkpoint(tmp_path / "untied.pt", args, state)
    with pytest.raises(ConversionError, match="output.weight differs from tok_embeddings.weight"):
        convert_checkpoint(src, tmp_path / "out")


@pytest.mark.parametrize("changes,match", [
    ({"prefix_vocab_size": 8, "prefix_pad": 8}, "prefix-conditioned model"),
    ({"block_size": 1024}, "context 1024 < 2050"),
])
def test_unsupported_model_args_are_refused(tmp_path, changes, match):
    args = their_model_args(**changes)
    src = save_training_checkpoint(tmp_path / "ckpt.pt", args, their_state(their_model_args()))
    with pytest.raises(ConversionError, match=match):
        convert_checkpoint(src, tmp_path / "out")


def _touch_marker(path: str) -> None:  # pragma: no cover - must never run
    Path(path).touch()


class _Payload:
    """Pickles as a call to ``_touch_marker``: code that a weights_only load must refuse to run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch_marker, (self.marker,))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    args = their_model_args()
    src = save_training_checkpoint(tmp_path / "evil.pt", args, their_state(args), extra=_Payload(marker))
    with pytest.raises(ConversionError, match=r"evil\.pt: cannot be read safely with torch.load\(weights_only=True\)"):
        convert_checkpoint(src, tmp_path / "out")
    assert not marker.exists()


def test_llama_folder_is_validated_and_gets_contract_ids(tmp_path):
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=2050, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    original = LlamaForCausalLM(config).eval()
    original.save_pretrained(tmp_path / "hf")
    out = convert_checkpoint(tmp_path / "hf", tmp_path / "llama")
    cfg = LlamaConfig.from_pretrained(out)
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (500, 500, 501)
    with torch.no_grad():
        torch.testing.assert_close(converted_logits(out), original(TOKENS).logits, atol=1e-6, rtol=0)

    LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=2050)).save_pretrained(tmp_path / "v40")
    with pytest.raises(ConversionError, match="vocab_size 40 != 502"):
        convert_checkpoint(tmp_path / "v40", tmp_path / "llama40")


def test_cli_convert_checks_size_and_refuses_to_overwrite(tmp_path, capsys):
    args = their_model_args(n_layers=1)  # the shape of this project's demo-xs (1 x 32 x 2, MLP 96)
    src = save_training_checkpoint(tmp_path / "ckpt.pt", args, their_state(args))
    assert main(["convert", str(src), str(tmp_path / "ok"), "--size", "demo-xs"]) == 0
    assert "vocab 502 (EOS 500, pad 501), context 2050" in capsys.readouterr().out

    assert main(["convert", str(src), str(tmp_path / "ok"), "--size", "demo-xs"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "other"), "--size", "demo-s"]) == 2
    err = capsys.readouterr().err
    assert "not size 'demo-s'" in err and "'d_model': '32 != 64'" in err
    assert main(["convert", str(tmp_path / "nope.pt"), str(tmp_path / "x")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_cli_help_explains_the_layouts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "slm_scaling" in text and "checkpoint-XXXXXXXX.pt" in text and "--size NAME" in text
