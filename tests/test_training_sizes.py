import json

import pytest

from hf_slm.cli import main
from hf_slm.training import PAPER_SIZES, SIZES, count_parameters, get_size, llama_config, meta_model
from hf_slm.training.cli import register

TABLE_1_N = {"20M": 20.45e6, "85M": 84.95e6, "155M": 154.2e6, "309M": 308.3e6, "823M": 822.2e6}


@pytest.mark.parametrize("name", list(TABLE_1_N))
def test_table1_non_embedding_parameters(name):
    model = meta_model(name, n_units=500)  # meta device: shapes only, no memory
    n, total = count_parameters(model)
    assert abs(n - TABLE_1_N[name]) / TABLE_1_N[name] < 0.005
    assert n == PAPER_SIZES[name].n_non_embedding  # the closed form agrees with the built model
    assert total - n == 502 * PAPER_SIZES[name].d_model  # one tied embedding / LM head over K + 2 ids
    untied = count_parameters(meta_model(name, n_units=500, tie_embeddings=False))
    assert untied == (n, n + 2 * 502 * PAPER_SIZES[name].d_model)  # N is the same tied or not


def test_table1_shapes_and_batches():
    shapes = {n: (s.n_layers, s.d_model, s.n_heads, s.batch_size) for n, s in PAPER_SIZES.items()}
    assert shapes == {"20M": (6, 512, 8, 64), "85M": (12, 768, 12, 128), "155M": (12, 1024, 16, 256),
                      "309M": (24, 1024, 16, 512), "823M": (16, 2048, 32, 512)}
    release = {n: s.release_batches for n, s in PAPER_SIZES.items()}  # configs/scaling of the release
    assert release == {"20M": (64,), "85M": (128,), "155M": (256,), "309M": (252,), "823M": (494, 608)}
    assert PAPER_SIZES["20M"].intermediate_size == 1536 and PAPER_SIZES["823M"].intermediate_size == 5632


def test_llama_config_follows_token_contract():
    cfg = llama_config("85M", n_units=500)
    assert (cfg.vocab_size, cfg.eos_token_id, cfg.pad_token_id, cfg.bos_token_id) == (502, 500, 501, 500)
    assert cfg.max_position_embeddings == 2050 and cfg.tie_word_embeddings is True and cfg.rms_norm_eps == 1e-5
    assert cfg._attn_implementation == "sdpa"


def test_demo_sizes_grow_and_custom_shapes_parse():
    demo = [SIZES[n].n_non_embedding for n in ("demo-xs", "demo-s", "demo-m", "demo-l")]
    assert demo == sorted(demo) and demo[-1] < 1e6
    custom = get_size("8x256x4")
    assert (custom.n_layers, custom.d_model, custom.n_heads) == (8, 256, 4)
    with pytest.raises(ValueError, match="unknown model size"):
        get_size("12B")


def test_sizes_command_json(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["sizes", "--json"])
    assert args.func(args) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["85M"]["N"] == 84_953_856 and rows["85M"]["intermediate_size"] == 2048
    assert rows["823M"]["N_total"] == 822_151_168 + 502 * 2048  # tied: one vocabulary matrix
    assert rows["309M"]["batch_size"] == 512 and rows["309M"]["release_batches"] == [252]


def test_sizes_table_shows_both_batches_and_refuses_bad_units(capsys):
    assert main(["sizes"]) == 0
    out = capsys.readouterr().out
    assert "batch (paper)" in out and "batch (release)" in out and "494/608" in out
    for bad in ("-5", "0", "abc"):
        with pytest.raises(SystemExit) as exit_info:
            main(["sizes", "--n-units", bad])
        assert exit_info.value.code == 2
        assert "expected a positive integer" in capsys.readouterr().err
