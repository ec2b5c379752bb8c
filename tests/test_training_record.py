import json

import pytest

from hf_slm.training import RecordError, RunRecord, flops_6nd, flops_with_attention


def _record(**changes):
    fields = dict(run="r", size="85M", N=84_953_856, N_total=85_724_928, D=10**9, U=5 * 10**8, epochs=2.0,
                  flops=flops_6nd(84_953_856, 10**9), flops_attn=flops_with_attention(84_953_856, 10**9, 12, 768, 2050),
                  loss=2.5, curve=[{"step": 1, "tokens": 10, "flops": 60.0, "loss": 3.0}],
                  metrics={"sblimp": {"accuracy": 0.6, "n": 100, "ci_low": 0.5, "ci_high": 0.7, "rule": "sum"}},
                  config={"size": "85M"}, datasets=["a"], tokenizer={"id": "t", "revision": None},
                  code_version={"version": "0.1.0", "commit": None})
    fields.update(changes)
    return RunRecord(**fields)


def test_flops_formulas():
    assert flops_6nd(10, 100) == 6000
    assert flops_with_attention(10, 100, n_layers=2, d_model=4, context=8) == 6000 + 12 * 2 * 4 * 8 * 100


def test_round_trip(tmp_path):
    rec = _record()
    path = rec.save(tmp_path / "run")
    assert path.name == "run.json"
    assert RunRecord.load(path) == rec
    assert RunRecord.load(tmp_path / "run") == rec


@pytest.mark.parametrize("field, value, message", [
    ("N", None, "field 'N'"), ("loss", "low", "field 'loss'"), ("curve", [{"step": 1}], "curve\\[0\\]"),
    ("metrics", {"x": {"accuracy": 1}}, "metrics.x"),
])
def test_validation_names_file_and_field(tmp_path, field, value, message):
    data = _record().to_dict()
    data[field] = value
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=f"run.json.*{message}"):
        RunRecord.load(path)


def test_missing_field(tmp_path):
    data = _record().to_dict()
    del data["U"]
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="missing field 'U'"):
        RunRecord.load(tmp_path)


def test_model_card_metadata_carries_the_benchmarks_as_model_index(tmp_path):
    from huggingface_hub import ModelCard

    from hf_slm.training.hub import render_model_card

    metrics = {"sblimp": {"accuracy": 0.61234, "n": 100, "ci_low": 0.5, "ci_high": 0.7, "rule": "sum"},
               "topic_storycloze": {"accuracy": 0.7, "n": 400, "ci_low": 0.65, "ci_high": 0.74, "rule": "mean"}}
    record = _record(metrics=metrics, datasets=["me/units-ls", str(tmp_path)], config={"size": "85M", "lr": 5e-4})
    card = ModelCard(render_model_card(record, "me/slm-85m"))
    results = {r.dataset_type: r for r in card.data.eval_results}
    assert results["sblimp"].metric_value == 0.6123 and results["topic_storycloze"].metric_value == 0.7
    assert "n=400" in results["topic_storycloze"].metric_name and results["sblimp"].metric_type == "accuracy"
    assert card.data.model_name == "r" and card.data.library_name == "transformers"
    assert card.data.datasets == ["me/units-ls"]  # a Hub id; the local folder stays out of the metadata
    assert "- sblimp: 0.612 (95% CI 0.500-0.700, n=100)" in card.text and "me/slm-85m" in card.text

    bare = ModelCard(render_model_card(_record(metrics={}, datasets=[str(tmp_path)]), "me/x"))
    assert bare.data.eval_results is None and bare.data.datasets is None and bare.data.model_name is None
    assert "Not evaluated yet." in bare.text
