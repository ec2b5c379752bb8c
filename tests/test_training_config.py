import pytest

from hf_slm.training import ConfigError, TrainConfig


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("size: 85M\ntokens_per_param: 20\nlr: 5.0e-4\ndatasets:\n  - a\n  - {id: b, test: false}\n")
    cfg = TrainConfig.from_yaml(path, ["lr=3e-4", "tokens=1e9", "compile=true", "tracker=null"])
    assert cfg.lr == 3e-4 and isinstance(cfg.lr, float)
    assert cfg.tokens == 1_000_000_000 and cfg.tokens_per_param is None  # override drops the exclusive partner
    assert cfg.compile is True and cfg.tracker is None
    assert [d.id for d in cfg.datasets] == ["a", "b"] and cfg.datasets[1].test is False
    assert cfg.global_batch_size == 128  # Table 1 batch of 85M
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("override, key", [
    (["nope=1"], "nope"), (["lr=fast"], "lr"), (["batch_size=2.5"], "batch_size"),
    (["mixed_precision=fp8"], "mixed_precision"), (["size=12B"], "size"), (["lr"], "key=value"),
    (["warmup_min=-1"], "warmup_min"), (["compile=maybe"], "compile"), (["compile_mode=fast"], "compile_mode"),
    (["tracker=mlflow"], "tracker"), (["sampling=shuffled"], "sampling"), (["token_type=bpe"], "token_type"),
    (["scaled_init=gpt"], "scaled_init"), (["warmup=-3"], "warmup"),
])
def test_bad_overrides_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        TrainConfig.from_yaml(None, override)


def test_unknown_yaml_key_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("size: demo-s\nlearning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*learning_rate"):
        TrainConfig.from_yaml(path)


def test_gradient_accumulation_is_computed():
    cfg = TrainConfig(size="85M", micro_batch_size=8)
    assert cfg.grad_accum_steps(1) == 16 and cfg.grad_accum_steps(4) == 4
    assert cfg.per_process_micro_batch(4) == 8
    assert TrainConfig(size="85M").grad_accum_steps(1) == 1
    with pytest.raises(ConfigError, match="micro_batch_size"):
        TrainConfig(size="85M", micro_batch_size=12).grad_accum_steps(1)


def test_warmup_rule():
    cfg = TrainConfig()  # the paper's text: max(100, 1 % of the steps)
    assert cfg.warmup_steps(1000) == 100 and cfg.warmup_steps(50_000) == 500
    assert TrainConfig(warmup_min=2).warmup_steps(50) == 2
    assert TrainConfig(warmup=1000).warmup_steps(829_800) == 1000  # the release: fixed for 20M/85M/155M
    one_percent = TrainConfig(warmup_min=0)  # the release: floor(1 %) for 309M/823M
    assert [one_percent.warmup_steps(n) for n in (58_850, 26_000, 66_050)] == [588, 260, 660]


@pytest.mark.parametrize("entry, message", [
    ({"id": "units/a", "weight": "abc"}, r"datasets: units/a: weight expects a number > 0, got 'abc'"),
    ({"id": "units/a", "weight": -1}, r"datasets: units/a: weight must be a number > 0"),
    ({"id": "units/a", "test": "maybe"}, r"datasets: units/a: test expects true or false, got 'maybe'"),
    ({"id": "units/a", "tset": False}, r"datasets\[0\]: needs 'id' and only keys"),
])
def test_bad_dataset_entries_name_the_key_and_the_dataset(entry, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(datasets=[entry])


def test_config_path_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; --config takes a YAML file"):
        TrainConfig.from_yaml(tmp_path)
    with pytest.raises(ConfigError, match="no such config file"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
