"""The paper preset is the authors' recipe: configs number for number, and the trainer really applies it."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import _training_helpers as _h
import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from hf_slm.data import pack_blocks
from hf_slm.training import TrainConfig, count_parameters, get_size, train
from hf_slm.training import trainer as trainer_module
from hf_slm.training.convert import convert_checkpoint
from hf_slm.training.trainer import build_model

ROOT = Path(__file__).resolve().parents[1]
RELEASE = json.loads((Path(__file__).with_name("data") / "slm_scaling_release_configs.json").read_text())
OURS = {"20m-109b": ("20M", []), "85m-109b": ("85M", []), "155m-65b": ("155M", []), "309m-30b": ("309M", []),
        "823m-26b": ("823M", []), "823m-82b": ("823M", ["batch_size=608"])}  # the 82B endpoint, as its yaml says

one_thread = _h.one_thread


@pytest.mark.parametrize("name", list(OURS))
def test_each_paper_config_matches_the_release(name):
    theirs, defaults = RELEASE["configs"][name], RELEASE["defaults"]
    size, extra = OURS[name]
    batch = theirs["batch_size"] * theirs["gradient_accumulation_steps"]
    tokens = theirs["max_steps"] * batch * theirs["block_size"]  # their endpoint's D
    cfg = TrainConfig.from_yaml(ROOT / "recipes" / "configs" / f"{size}.yaml", [f"tokens={tokens}", *extra])
    shape = get_size(cfg.size)
    assert (shape.d_model, shape.n_layers, shape.n_heads, shape.multiple_of) == (
        theirs["dim"], theirs["n_layers"], theirs["n_heads"], theirs["multiple_of"])
    assert cfg.n_units + 2 == theirs["vocab_size"] and cfg.block_size == theirs["block_size"]
    assert cfg.global_batch_size == batch
    n_steps = math.ceil(tokens / (cfg.global_batch_size * cfg.block_size))
    assert n_steps == theirs["max_steps"] and cfg.warmup_steps(n_steps) == theirs["warmup_steps"]
    assert (cfg.lr, cfg.min_lr, cfg.weight_decay) == (theirs["learning_rate"], theirs["min_learning_rate"],
                                                      theirs["weight_decay"])
    assert cfg.betas == (defaults["beta1"], defaults["beta2"]) and cfg.grad_clip == defaults["grad_clip"]
    assert (cfg.norm_eps, cfg.init_std, cfg.tie_embeddings) == (defaults["norm_eps"], defaults["init_std"],
                                                                defaults["tied_embeddings"])
    assert cfg.mixed_precision == "bf16" and theirs["precision"] == "bfloat16" and cfg.compile is theirs["compile"]
    assert cfg.sampling == "paper" and cfg.scaled_init == "release"


@pytest.mark.usefixtures("one_thread")
def test_the_trainer_applies_warmup_cosine_floor_and_decay_only_on_matrices(tmp_path, monkeypatch):
    seen, groups = [], []
    real = trainer_module.make_optimizer

    def spying_optimizer(model, config, device):
        optimizer = real(model, config, device)
        names = {id(p): n for n, p in model.named_parameters()}
        groups.extend({"decay": g["weight_decay"], "names": {names[id(p)] for p in g["params"]},
                       "dims": {p.dim() for p in g["params"]}} for g in optimizer.param_groups)
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: seen.append([(g["lr"], g["weight_decay"]) for g in opt.param_groups]))
        return optimizer

    monkeypatch.setattr(trainer_module, "make_optimizer", spying_optimizer)
    K, T = 16, 32
    data = pack_blocks([list(range(K)) * 2] * 20, T, K, K + 1)
    cfg = TrainConfig(size="demo-xs", n_units=K, block_size=T, batch_size=2, tokens=12 * 2 * T, lr=1e-3, min_lr=1e-4,
                      warmup=4, weight_decay=0.1, tracker=None, output_dir=str(tmp_path / "run"))
    train(cfg, data, data, progress=False)
    lrs = [step[0][0] for step in seen]  # read back from the optimizer when each step is applied
    assert len(lrs) == 12 and all(len({lr for lr, _ in step}) == 1 for step in seen)
    np.testing.assert_allclose(lrs[:5], [0.0, 0.25e-3, 0.5e-3, 0.75e-3, 1e-3], rtol=1e-12)  # lr * s / W
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False)) and lrs[-1] == pytest.approx(1e-4)  # floor
    mid = 4 + (12 - 1 - 4) / 2  # half-way through the cosine: half-way between lr and min_lr
    assert np.interp(mid, range(12), lrs) == pytest.approx((1e-3 + 1e-4) / 2, rel=0.02)
    decay, no_decay = sorted(groups, key=lambda g: -g["decay"])
    assert decay["decay"] == 0.1 and no_decay["decay"] == 0.0 and decay["dims"] == {2} and no_decay["dims"] == {1}
    assert "model.embed_tokens.weight" in decay["names"] and any("o_proj" in n for n in decay["names"])
    assert no_decay["names"] and all("norm" in n for n in no_decay["names"])


def test_init_follows_the_release():
    torch.manual_seed(0)
    model = build_model(TrainConfig(size="2x256x4", n_units=500))
    scaled = 0.02 / math.sqrt(2 * 2)
    for name, p in model.named_parameters():
        if p.dim() < 2:
            assert torch.all(p == 1)  # RMSNorm weights
            continue
        want = scaled if name.endswith(("o_proj.weight", "up_proj.weight")) else 0.02
        assert p.std().item() == pytest.approx(want, rel=0.04), name
    assert model.lm_head.weight is model.model.embed_tokens.weight and model.config.rms_norm_eps == 1e-5
    residual = build_model(TrainConfig(size="2x256x4", n_units=500, scaled_init="residual"))
    assert residual.model.layers[0].mlp.down_proj.weight.std().item() == pytest.approx(scaled, rel=0.04)
    assert residual.model.layers[0].mlp.up_proj.weight.std().item() == pytest.approx(0.02, rel=0.04)


def test_a_converted_release_checkpoint_and_ours_have_the_same_parameters_and_tying(tmp_path):
    spec = importlib.util.spec_from_file_location("_convert_helpers", Path(__file__).with_name("test_training_convert.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    args = helpers.their_model_args(dim=64, n_layers=2, n_heads=4, multiple_of=32)  # = our demo-s shape
    native = helpers.save_native_folder(tmp_path / "native", args, helpers.their_state(args))
    converted = LlamaForCausalLM.from_pretrained(convert_checkpoint(native, tmp_path / "converted", size="demo-s"))
    ours = build_model(TrainConfig(size="demo-s", n_units=500))
    shapes = [(n, tuple(p.shape)) for n, p in ours.named_parameters()]
    assert shapes == [(n, tuple(p.shape)) for n, p in converted.named_parameters()]
    for model in (ours, converted):
        assert model.config.tie_word_embeddings and model.lm_head.weight is model.model.embed_tokens.weight
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings", "eos_token_id",
            "pad_token_id", "bos_token_id", "attention_bias", "mlp_bias", "hidden_act")
    assert {k: getattr(ours.config, k) for k in keys} == {k: getattr(converted.config, k) for k in keys}
    assert ours.config.rope_parameters["rope_theta"] == converted.config.rope_parameters["rope_theta"] == 10000.0
    assert count_parameters(ours) == count_parameters(converted)
    assert count_parameters(ours)[0] == get_size("demo-s").n_non_embedding  # N excludes the one tied matrix
    ours.load_state_dict(converted.state_dict())  # strict: interchangeable


def test_the_recipe_reports_config_errors_in_one_line(tmp_path, capsys):
    import runpy

    recipe = runpy.run_path(str(ROOT / "recipes" / "train.py"))["main"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("size: demo-xs\ndatasets:\n  - {id: units/a, weight: abc}\n")
    for argv, message in (
        (["--config", str(tmp_path)], "is a folder; --config takes a YAML file"),
        (["--config", str(bad)], "datasets: units/a: weight expects a number > 0, got 'abc'"),
        (["--config", str(bad), "datasets=[{id: units/a, test: maybe}]"], "units/a: test expects true or false"),
        (["lr=fast"], "lr expects float"),
        ([f"datasets=[{tmp_path / 'missing'}]", "tokens=100"], "no such folder, and not a Hub id"),
    ):
        assert recipe(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("train.py: error: ") and message in err and "Traceback" not in err, err
        assert err.count("\n") == 1
