"""``hf-slm eval`` on a run folder (results merged into run.json and the model card), on a converted checkpoint,
on a unigram-compressed model, and its errors (exit code 2, naming what and where)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import _evaluation_helpers as H
import datasets
import numpy as np
import pytest

from hf_slm.cli import main
from hf_slm.evaluation import evaluate_benchmark, evaluate_model, sequence_logprobs
from hf_slm.evaluation.loading import sha256_file
from hf_slm.training import RunRecord, flops_6nd
from hf_slm.training.convert import convert_checkpoint
from hf_slm.units import compress, train_unigram

K = 8




def benchmark_rows(seed: int, n_items: int = 8, prompt: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        ctx = rng.integers(0, K, 6).tolist() if prompt else []
        for label in (1, 0):
            rows.append({"id": f"{i}-{label}", "item_id": f"q{i}", "label": label,
                         "units": rng.integers(0, K, int(rng.integers(4, 12))).tolist(), "prompt_units": ctx,
                         "phenomenon": "ab"[i % 2], "voice": f"v{i % 2}", "pair_id": f"p{i // 2}x{i % 2}"})
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    paths = {}
    for name, rows in (("sblimp", benchmark_rows(0)), ("ssc", benchmark_rows(1, prompt=True))):
        paths[name] = root / f"{name}.parquet"
        datasets.Dataset.from_list(rows).to_parquet(str(paths[name]))
    paths["loss"] = root / "test.jsonl"
    rng = np.random.default_rng(2)
    paths["loss"].write_text("".join(json.dumps({"id": str(i), "units": rng.integers(0, K, 9).tolist()}) + "\n"
                                     for i in range(5)))
    return paths


def make_run(run_dir: Path) -> RunRecord:
    H.tiny_llama(K).save_pretrained(run_dir / "model")
    record = RunRecord(run="demo-run", size="demo-s", N=1000, N_total=1200, D=10**5, U=10**5, epochs=1.0,
                       flops=flops_6nd(1000, 10**5), flops_attn=7e8, loss=2.0,
                       curve=[{"step": 1, "tokens": 10**5, "flops": 6e8, "loss": 2.0}], config={"n_units": K},
                       datasets=["units/stories"], tokenizer="tokenizer", code_version={"version": "0"})
    record.save(run_dir)
    return record


def test_a_run_folder_is_scored_and_the_results_land_in_run_json_and_the_card(files, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "demo-run"
    make_run(run_dir)
    out = tmp_path / "results.json"
    rc = main(["eval", str(run_dir), "--benchmark", f"sblimp={files['sblimp']}", "-b", f"sSC={files['ssc']}",
               "-b", f"test_loss={files['loss']}", "--output", str(out), "--batch-size", "3", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    model = H.tiny_llama(K)
    for name, key in (("sblimp", "sblimp"), ("spoken_storycloze", "ssc")):
        ds = datasets.load_dataset("parquet", data_files=str(files[key]), split="train")
        direct = evaluate_benchmark(model, ds, K, name, use_evaluate=False)
        assert doc["results"][name]["accuracy"] == pytest.approx(direct["accuracy"], abs=1e-12)
        assert doc["results"][name]["by_phenomenon"] == pytest.approx(direct["by_phenomenon"], abs=1e-12)
    assert doc["scoring"]["name"] == "paper" and doc["model"]["run"] == str(run_dir)
    assert set(doc["model"]["files_sha256"]) == {"config.json", "model.safetensors"}
    assert doc["benchmarks"]["sblimp"]["files_sha256"] == {"sblimp.parquet": sha256_file(files["sblimp"])}
    assert doc["tokenizer"]["units"] == {"n_units": K, "eos": K, "vocab_size": K + 2}
    loss = doc["results"]["test_loss"]
    assert loss["n"] == 5 and loss["tokens"] == 50 and loss["loss"] == loss["utterance_mean_loss"]
    record = RunRecord.load(run_dir)
    assert set(record.metrics) == {"sblimp", "spoken_storycloze"}
    sblimp = record.metrics["sblimp"]
    assert sblimp["accuracy"] == doc["results"]["sblimp"]["accuracy"] and sblimp["rule"] == "paper"
    assert sblimp["provenance"]["benchmark"]["source"] == str(files["sblimp"])
    assert record.stats["evaluation"]["test_loss"]["loss"] == loss["loss"]
    card = (run_dir / "model" / "README.md").read_text()
    assert "model-index" in card and f"value: {round(sblimp['accuracy'], 4)}" in card
    assert "accuracy (paper log-likelihood" in card


def test_a_converted_checkpoint_is_scored_by_one_command(files, tmp_path):
    src = tmp_path / "llama"
    H.tiny_llama(K, seed=5, context=2050).save_pretrained(src)
    converted = convert_checkpoint(src, tmp_path / "converted", n_units=K)
    doc = evaluate_model(converted, {"sblimp": str(files["sblimp"])}, scoring="sum", progress=False)
    ds = datasets.load_dataset("parquet", data_files=str(files["sblimp"]), split="train")
    direct = evaluate_benchmark(H.tiny_llama(K, seed=5, context=2050), ds, K, "sblimp", scoring="sum",
                                use_evaluate=False)
    assert doc["results"]["sblimp"]["accuracy"] == pytest.approx(direct["accuracy"])
    assert doc["results"]["sblimp"]["scoring"] == "sum" and doc["model"]["run"] is None


def test_a_unigram_model_scores_compressed_units(files, tmp_path):
    rng = np.random.default_rng(0)
    words = [[0, 1, 2], [3, 4], [5, 6, 7], [2, 3]]
    corpus = [sum((words[w] for w in rng.integers(0, len(words), 12)), []) for _ in range(60)]
    tok = train_unigram(corpus, K, vocab_size=20, show_progress=False)
    folder = tmp_path / "unigram-model"
    H.tiny_llama(K, vocab=len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    doc = evaluate_model(folder, {"sblimp": str(files["sblimp"])}, progress=False)
    assert doc["tokenizer"]["units"]["eos"] == len(tok) - 2 and doc["tokenizer"]["units"]["n_units"] == K
    ds = datasets.load_dataset("parquet", data_files=str(files["sblimp"]), split="train")
    model = H.tiny_llama(K, vocab=len(tok))
    eos = len(tok) - 2
    scores = sequence_logprobs(model, [compress(tok, u) for u in ds["units"]], [[eos]] * len(ds))
    means = {(r["item_id"], r["label"]): s / n for r, (s, n) in zip(ds, scores, strict=True)}
    decisions = [float(means[(f"q{i}", 1)] > means[(f"q{i}", 0)]) for i in range(8)]
    assert doc["results"]["sblimp"]["voice_pair_accuracy"] == pytest.approx(np.mean(decisions))
    assert sum(len(compress(tok, u)) for u in ds["units"]) < sum(len(u) for u in ds["units"])  # compressed
    H.tiny_llama(K, vocab=len(tok) + 1).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"vocabulary \(21\) is not its unigram tokenizer's \(20"):
        evaluate_model(folder, {"sblimp": str(files["sblimp"])}, progress=False)


def test_errors_exit_2_and_name_what_is_wrong(files, tmp_path, capsys):
    model_dir = tmp_path / "m"
    H.tiny_llama(K).save_pretrained(model_dir)

    def run(*benchmarks: str, extra: tuple[str, ...] = ()) -> str:
        args = ["eval", str(model_dir), *[a for b in benchmarks for a in ("-b", b)], "--no-progress", *extra]
        assert main(args) == 2
        return capsys.readouterr().err

    assert "unknown benchmark 'glue'" in run(f"glue={files['sblimp']}")
    assert "expected NAME=PATH" in run("sblimp")
    assert "no such file or folder" in run(f"sblimp={tmp_path / 'nope.parquet'}")
    rows = benchmark_rows(0)
    bad = tmp_path / "bad.parquet"
    datasets.Dataset.from_list([{k: v for k, v in r.items() if k != "item_id"} for r in rows]).to_parquet(str(bad))
    assert "missing column(s) ['item_id']" in run(f"sblimp={bad}")
    two = [dict(r, label=1) if r["id"] == "3-0" else r for r in rows]
    datasets.Dataset.from_list(two).to_parquet(str(bad))
    assert "item 'q3' has 2 positive and 0 negative" in run(f"sblimp={bad}")
    assert "has unit id" in run(f"sblimp={files['sblimp']}", extra=("--n-units", "4"))
    long = [dict(r, units=r["units"] * 200) if r["id"] == "5-1" else r for r in rows]
    datasets.Dataset.from_list(long).to_parquet(str(bad))
    err = run(f"sblimp={bad}")
    assert "candidate '5-1' (item 'q5') has" in err and "more than the model's context of 512" in err


def test_eval_cli_module_stays_light():
    code = ("import sys; import hf_slm.evaluation.cli as c, argparse; p = argparse.ArgumentParser(); "
            "c.register(p.add_subparsers()); "
            "assert not {'torch', 'transformers', 'datasets'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], check=True)


def test_processes_split_the_candidates_and_gather_the_same_scores(monkeypatch):
    """What ``accelerate launch recipes/eval.py`` does (checked by hand under torchrun with 2 gloo processes):
    each process scores every 2nd row of the length order; the gathered scores equal one process's."""
    from types import SimpleNamespace

    import accelerate.utils

    model = H.tiny_llama(K)
    rng = np.random.default_rng(3)
    seqs = [rng.integers(0, K, int(rng.integers(2, 20))).tolist() for _ in range(11)]
    shards = {}

    def gather(part):
        shards[len(shards)] = list(part)
        return [x for shard in shards.values() for x in shard]

    monkeypatch.setattr(accelerate.utils, "gather_object", gather)
    with pytest.raises(RuntimeError, match="scored by no process"):
        sequence_logprobs(model, seqs, [[K]] * 11, state=SimpleNamespace(num_processes=2, process_index=0))
    both = sequence_logprobs(model, seqs, [[K]] * 11, state=SimpleNamespace(num_processes=2, process_index=1))
    assert sorted(len(s) for s in shards.values()) == [5, 6]
    alone = sequence_logprobs(model, seqs, [[K]] * 11)
    assert [n for _, n in both] == [n for _, n in alone]
    np.testing.assert_allclose([s for s, _ in both], [s for s, _ in alone], rtol=1e-6)
