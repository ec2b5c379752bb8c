"""The ``paper`` scoring preset against an independent reference implementation of the authors' rules.

The reference below is written from the rules (SPEC.md, the release's evaluate.py / RESULTS.md), not from our
code: each candidate is one utterance fed to the model one at a time as ``[EOS] + units``; its score is the mean
NLL of the units (the terminal EOS is not scored), in float64; lower NLL wins against the best negative; a tie
counts 0.5 in sBLIMP and 0 in StoryCloze; sBLIMP's accuracy is the mean over phenomena of the mean over pairs of
the decisions averaged over the pair's voices. The benchmark (seed 3) is one where the presets disagree: the
summed log-probability prefers the shorter negatives, and the macro mean differs from both micro means.
"""

from __future__ import annotations

import _evaluation_helpers as H
import datasets
import numpy as np
import pytest
import torch

from hf_slm.evaluation import PRESETS, decide, evaluate_benchmark, get_preset, summarize_decisions
from hf_slm.evaluation.token_ids import plain_vocabulary

K = 6
SEED = 3




def sblimp_like(seed: int) -> datasets.Dataset:
    """Phenomenon A: 3 pairs, B: 1 pair; the first pair of each has 3 voices, the others 2; negatives 3-6 units
    shorter than their positive."""
    rng = np.random.default_rng(seed)
    rows = []
    for phenomenon, n_pairs in (("A", 3), ("B", 1)):
        for p in range(n_pairs):
            for voice in (("v1", "v2", "v3") if p == 0 else ("v1", "v2")):
                item = f"{phenomenon}{p}/{voice}"
                n_pos = int(rng.integers(10, 16))
                n_neg = n_pos - int(rng.integers(3, 7))
                for label, n in ((1, n_pos), (0, n_neg)):
                    rows.append({"id": f"{item}/{label}", "item_id": item, "label": label,
                                 "units": rng.integers(0, K, n).tolist(), "phenomenon": phenomenon, "voice": voice,
                                 "pair_id": f"{phenomenon}{p}"})
    return datasets.Dataset.from_list(rows)


def reference_nll(model, units: list[int]) -> float:
    """Mean NLL of ``units`` after a leading EOS (id K), one unbatched forward pass, float64."""
    ids = [K, *units]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    return -float(np.mean([float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))]))


def reference_paper(model, rows: list[dict], tie: float) -> dict:
    nll = {r["id"]: reference_nll(model, (r.get("prompt_units") or []) + r["units"]) for r in rows}
    items: dict[str, dict] = {}
    for r in rows:
        entry = items.setdefault(r["item_id"], {"neg": [], "pair": r.get("pair_id") or r["item_id"],
                                                "phenomenon": r.get("phenomenon") or "all"})
        if r["label"] == 1:
            entry["pos"] = nll[r["id"]]
        else:
            entry["neg"].append(nll[r["id"]])
    decisions = {}
    for item, e in items.items():
        best = min(e["neg"])
        decisions[item] = 1.0 if e["pos"] < best else (tie if e["pos"] == best else 0.0)
    pairs: dict[str, list[float]] = {}
    pair_phenomenon = {}
    for item, e in items.items():
        pairs.setdefault(e["pair"], []).append(decisions[item])
        pair_phenomenon[e["pair"]] = e["phenomenon"]
    by_phenomenon: dict[str, list[float]] = {}
    for pair, values in pairs.items():
        by_phenomenon.setdefault(pair_phenomenon[pair], []).append(sum(values) / len(values))
    macro = {ph: sum(v) / len(v) for ph, v in by_phenomenon.items()}
    return {"accuracy": sum(macro.values()) / len(macro), "by_phenomenon": macro,
            "pair_accuracy": float(np.mean([v for vs in by_phenomenon.values() for v in vs])),
            "voice_pair_accuracy": float(np.mean(list(decisions.values()))), "n": len(pairs)}


@pytest.fixture(scope="module")
def model():
    return H.tiny_llama(K, seed=SEED)


def test_paper_preset_matches_the_reference_and_differs_from_sum_and_micro(model):
    ds = sblimp_like(SEED)
    ref = reference_paper(model, ds.to_list(), tie=0.5)
    got = evaluate_benchmark(model, ds, K, "sblimp", use_evaluate=False, batch_size=5)
    for key in ("accuracy", "pair_accuracy", "voice_pair_accuracy"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12), key
    assert got["by_phenomenon"] == pytest.approx(ref["by_phenomenon"], abs=1e-12)
    assert (got["n"], got["n_pairs"], got["n_items"], got["scoring"]) == (4, 4, 10, "paper")
    assert got["accuracy"] == pytest.approx(19 / 36)  # (A: (2/3 + 1/2 + 1/2) / 3 + B: 1/2) / 2
    summed = evaluate_benchmark(model, ds, K, "sblimp", scoring="sum", use_evaluate=False)
    mean = evaluate_benchmark(model, ds, K, "sblimp", scoring="mean", use_evaluate=False)
    assert summed["accuracy"] == 0.0  # the summed log-prob of a shorter negative is always higher here
    assert mean["accuracy"] == pytest.approx(ref["voice_pair_accuracy"]) == pytest.approx(0.6)
    assert len({round(got["accuracy"], 9), round(got["pair_accuracy"], 9), round(got["voice_pair_accuracy"], 9),
                summed["accuracy"]}) == 4


def test_storycloze_scores_the_whole_story_and_several_negatives(model):
    rng = np.random.default_rng(4)  # a draw where joining the prompt changes the answer
    rows = []
    for i in range(6):
        prompt = rng.integers(0, K, 8).tolist()
        for k in range(3 if i % 2 else 2):  # odd items have two negatives (as SALMon can)
            rows.append({"id": f"{i}/{k}", "item_id": str(i), "label": int(k == 0),
                         "units": rng.integers(0, K, int(rng.integers(3, 9))).tolist(), "prompt_units": prompt})
    ds = datasets.Dataset.from_list(rows)
    ref = reference_paper(model, rows, tie=0.0)
    got = evaluate_benchmark(model, ds, K, "spoken_storycloze", use_evaluate=False)
    assert got["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-12) and got["n"] == 6
    split = evaluate_benchmark(model, ds, K, "spoken_storycloze", scoring="mean", use_evaluate=False)
    assert (got["accuracy"], split["accuracy"]) == (pytest.approx(0.5), pytest.approx(1 / 3))


def test_several_presets_from_shared_forward_passes_equal_one_preset_at_a_time(model, monkeypatch):
    from hf_slm.evaluation import benchmarks

    rows = []
    for i in range(4):
        for k in range(2):
            rows.append({"id": f"{i}/{k}", "item_id": str(i), "label": int(k == 0), "units": [i, k, (i + k) % K, 1],
                         "prompt_units": [k, i]})
    with_prompt = datasets.Dataset.from_list(rows)
    plain = with_prompt.remove_columns("prompt_units")
    calls = []
    real = benchmarks.candidate_scores
    monkeypatch.setattr(benchmarks, "candidate_scores", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    for ds, passes in ((with_prompt, 2), (plain, 1)):  # without prompts every layout scores the same tokens
        calls.clear()
        got = benchmarks.evaluate_presets(model, ds, K, "tSC", ["paper", "sum", "mean"])
        assert len(calls) == passes
        for preset, result in got.items():
            alone = real(model, ds, "topic_storycloze", benchmarks.get_preset(preset), vocab=plain_vocabulary(K))
            assert result == benchmarks.summarize_scores(*alone, "topic_storycloze", benchmarks.get_preset(preset))
            assert result == evaluate_benchmark(model, ds, K, "tSC", scoring=preset, use_evaluate=False)


def test_ties_and_presets():
    assert decide([1.0, 0.0, -2.0], [1.0, 1.0, -3.0], tie_credit=0.0).tolist() == [0.0, 0.0, 1.0]
    assert decide([1.0], [1.0], tie_credit=0.5).tolist() == [0.5]
    assert get_preset("paper").tie_credit("sblimp") == 0.5 and get_preset("paper").tie_credit("tSC") == 0.0
    assert get_preset("sum").tie_credit("spoken_storycloze") == 0.5
    assert sorted(PRESETS) == ["mean", "paper", "sum"]
    with pytest.raises(ValueError, match="unknown scoring preset 'max'"):
        get_preset("max")
    with pytest.raises(ValueError, match="pair 'p' spans phenomena 'a' and 'b'"):
        summarize_decisions([1, 0], phenomena=["a", "b"], pair_ids=["p", "p"], aggregate="macro")
    micro = summarize_decisions([1, 1, 0, 0.5], phenomena=["a", "a", "a", "b"], aggregate="micro")
    macro = summarize_decisions([1, 1, 0, 0.5], phenomena=["a", "a", "a", "b"], aggregate="macro")
    assert micro["accuracy"] == 0.625 and micro["n"] == 4
    assert macro["accuracy"] == pytest.approx((2 / 3 + 0.5) / 2) and macro["by_phenomenon"] == pytest.approx(
        {"a": 2 / 3, "b": 0.5})
