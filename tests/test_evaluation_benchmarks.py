from pathlib import Path

import datasets
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hf_slm.data.tokens import vocab_size
from hf_slm.evaluation import (
    BENCHMARKS,
    BenchmarkError,
    evaluate_all,
    evaluate_benchmark,
    load_metric,
    metrics_path,
)

K, GOOD, BAD = 8, 3, 5

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "item_id": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "units": datasets.List(datasets.Value("uint16")),
        "prompt_units": datasets.List(datasets.Value("uint16")),
    }
)


def preferring(token: int | None) -> LlamaForCausalLM:
    """A tiny Llama whose next-token distribution always favours ``token`` strongly (uniform when None).

    Attention and MLP outputs are zeroed and every embedding is all-ones, so the final hidden state is the
    same everywhere; the LM head then puts a logit of 32 on ``token`` and 0 elsewhere.
    """
    config = LlamaConfig(
        vocab_size=vocab_size(K), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        if token is not None:
            model.lm_head.weight[token] = 1.0
    return model


def benchmark(n_items: int = 6, prompt: list[int] | None = None) -> datasets.Dataset:
    """Items whose positive repeats GOOD and negative repeats BAD (same length), rows shuffled."""
    rows = []
    for i in range(n_items):
        length = 2 + i
        for label, unit in ((1, GOOD), (0, BAD)):
            rows.append({
                "id": f"{i}-{label}", "item_id": f"item{i}", "label": label, "units": [unit] * length,
                "prompt_units": prompt or [],
            })
    rows = rows[1::2] + rows[::2]
    return datasets.Dataset.from_list(rows, features=FEATURES)


def assert_same(a: dict, b: dict) -> None:
    """Equal results: the same keys, numbers within 1e-12, nested breakdowns likewise."""
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], dict):
            assert_same(a[key], b[key])
        else:
            assert a[key] == pytest.approx(b[key], abs=1e-12), key


@pytest.fixture(scope="module")
def metrics():
    return {name: load_metric(name) for name in BENCHMARKS}


def test_metric_folders_are_loadable_packages():
    for name in BENCHMARKS:
        folder = Path(metrics_path(name))
        assert folder.name == name and (folder / f"{name}.py").is_file() and (folder / "__init__.py").is_file()
    with pytest.raises(KeyError, match="unknown benchmark"):
        metrics_path("glue")


def test_metric_modules_describe_their_benchmark(metrics):
    for name, metric in metrics.items():
        assert "Cuervo" in metric.citation and metric.description == BENCHMARKS[name].description
        assert set(metric.features) == {"positive_scores", "negative_scores"}
        result = metric.compute(positive_scores=[0.0, -1.0, -2.0, -3.0], negative_scores=[-1.0, 0.0, -2.0, -4.0])
        assert result["accuracy"] == pytest.approx(0.625) and result["n"] == 4
        assert result["ci_low"] < 0.625 < result["ci_high"]


SPEECH = ("sblimp", "swuggy", "spoken_storycloze", "topic_storycloze", "salmon")


@pytest.mark.parametrize(("token", "accuracy"), [(GOOD, 1.0), (BAD, 0.0), (None, 0.5)])
def test_preferring_the_positive_scores_100_percent_on_every_metric(metrics, token, accuracy):
    """Every preset and both backends; a uniform model ties every item: 0.5 credit, or the release's 0 in the
    StoryClozes under the paper preset."""
    model = preferring(token)
    for name in SPEECH:
        prompt = [1, 2] if name == "spoken_storycloze" else None
        ds = benchmark(prompt=prompt)
        for scoring in ("sum", "mean", "paper") if name in ("sblimp", "spoken_storycloze") else ("paper",):
            result = evaluate_benchmark(model, ds, K, name, scoring=scoring, batch_size=4, use_evaluate=False)
            expected = accuracy
            if token is None and scoring == "paper" and "storycloze" in name:
                expected = 0.0
            assert result["accuracy"] == expected and result["n"] == 6
            assert result["rule"] == result["scoring"] == scoring
        via_metric = evaluate_benchmark(model, ds, K, name, metric=metrics[name], batch_size=4)
        assert_same(via_metric, result)


def test_evaluate_all_gives_the_run_record_metrics_with_either_backend():
    model = preferring(GOOD)
    benchmarks = {name: benchmark() for name in BENCHMARKS}
    via_evaluate = evaluate_all(model, benchmarks, K, rule="mean", progress=False)
    direct = evaluate_all(model, benchmarks, K, scoring="mean", use_evaluate=False, progress=False)
    assert set(via_evaluate) == set(BENCHMARKS)
    for name in BENCHMARKS:
        assert {"accuracy", "n", "ci_low", "ci_high", "rule", "scoring", "by_phenomenon"} <= set(via_evaluate[name])
        assert_same(via_evaluate[name], direct[name])
        assert via_evaluate[name]["rule"] == "mean" and via_evaluate[name]["accuracy"] == 1.0
    aliased = evaluate_all(model, {"sSC": benchmark(), "tSC": benchmark()}, K, progress=False, use_evaluate=False)
    assert set(aliased) == {"spoken_storycloze", "topic_storycloze"}
    assert aliased["spoken_storycloze"]["scoring"] == "paper"


def test_malformed_items_are_named_in_the_error():
    model = preferring(GOOD)
    ds = benchmark(n_items=3)
    two_positives = ds.map(lambda row: {"label": 1 if row["item_id"] == "item1" else row["label"]})
    with pytest.raises(BenchmarkError, match=r"'sblimp': item 'item1' has 2 positive and 0 negative"):
        evaluate_benchmark(model, two_positives, K, "sblimp", use_evaluate=False)
    lonely = ds.filter(lambda row: row["id"] != "2-0")
    with pytest.raises(BenchmarkError, match=r"'topic_storycloze': item 'item2' has 1 positive and 0 negative"):
        evaluate_benchmark(model, lonely, K, "topic_storycloze", use_evaluate=False)
    with pytest.raises(BenchmarkError, match="missing column"):
        evaluate_benchmark(model, ds.remove_columns("item_id"), K, "sblimp", use_evaluate=False)
    with pytest.raises(BenchmarkError, match=r"'sblimp': candidate '\d-\d' \(item 'item\d'\) has unit id 5 >= K=4"):
        evaluate_benchmark(model, ds, 4, "sblimp", use_evaluate=False)
    long = benchmark(n_items=1).map(lambda row: {"units": row["units"] * 40})
    with pytest.raises(BenchmarkError, match=r"candidate '0-\d' \(item 'item0'\) has 80 tokens .* context of 64"):
        evaluate_benchmark(model, long, K, "sblimp", use_evaluate=False)
