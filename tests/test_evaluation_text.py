"""The text side (the paper's SLM-vs-LLM comparison): BLiMP, StoryCloze and topic StoryCloze in their released text
formats, imported and scored on a tiny random GPT-NeoX (Pythia's architecture) with a tokenizer built with
``tokenizers``, under the same presets."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

from hf_slm.cli import main
from hf_slm.evaluation import evaluate_model, load_benchmark

BLIMP = {
    "anaphor_gender_agreement": ("anaphor_agreement", [("Amy saw herself.", "Amy saw himself."),
                                                       ("The man hurt himself.", "The man hurt herself.")]),
    "wh_questions_object_gap": ("filler_gap", [("What did Tom eat?", "What did Tom eat the cake?"),
                                               ("Who did Ann see?", "Who did Ann see Tom?"),
                                               ("What did Sue buy?", "What did Sue buy it?")]),
}
STORIES = [
    ("s1", ["Tom was hungry.", "He went to the shop.", "He bought bread.", "He walked home."], "He ate the bread.",
     "He hated food."),
    ("s2", ["Ann had a test.", "She studied.", "She slept early.", "She woke up."], "She passed the test.",
     "She bought bread."),
    ("s3", ["Sue saw a dog.", "It was lost.", "She called the owner.", "He came fast."], "He thanked Sue.",
     "The dog ate the test."),
]
SPECIAL = "<|endoftext|>"


def write_blimp(folder):
    folder.mkdir(parents=True)
    for uid, (term, pairs) in BLIMP.items():
        lines = [json.dumps({"sentence_good": good, "sentence_bad": bad, "field": "syntax", "linguistics_term": term,
                             "UID": uid, "simple_LM_method": True, "one_prefix_method": False,
                             "two_prefix_method": False, "lexically_identical": False, "pair_id": i})
                 for i, (good, bad) in enumerate(pairs)]
        (folder / f"{uid}.jsonl").write_text("\n".join(lines) + "\n")


def write_storycloze_csv(path):
    header = ["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
              "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for k, (sid, sentences, right, wrong) in enumerate(STORIES):
            endings = (right, wrong) if k % 2 == 0 else (wrong, right)
            writer.writerow([sid, *sentences, *endings, 1 if k % 2 == 0 else 2])


def text_model(folder):
    """A tokenizer trained with ``tokenizers`` on the benchmark texts and a 1-layer random GPT-NeoX, saved."""
    texts = [s for _, pairs in BLIMP.values() for pair in pairs for s in pair]
    texts += [" ".join([*s, r, w]) for _, s, r, w in STORIES]
    backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", SPECIAL]))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", bos_token=SPECIAL, eos_token=SPECIAL)
    torch.manual_seed(0)
    config = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=4, max_position_embeddings=128, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    model = GPTNeoXForCausalLM(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def mean_logprob(model, tok, text: str) -> float:
    """Reference: the whole text after <|endoftext|>, unbatched, mean log-probability of its tokens."""
    ids = [tok.eos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return float(np.mean([float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]))


def test_text_benchmarks_import_and_score_on_a_tiny_pythia(tmp_path):
    write_blimp(tmp_path / "blimp" / "data")
    write_storycloze_csv(tmp_path / "cloze_test_spring2016.csv")
    for layout, src, out in (("blimp-text", tmp_path / "blimp" / "data", "blimp-bench"),
                             ("storycloze-text", tmp_path / "cloze_test_spring2016.csv", "sc"),
                             ("topic-storycloze-text", tmp_path / "cloze_test_spring2016.csv", "tsc")):
        assert main(["build-benchmark", layout, str(src), str(tmp_path / out), "--seed", "1"]) == 0
    blimp = load_benchmark(tmp_path / "blimp-bench").dataset.to_list()
    assert len(blimp) == 10 and {r["phenomenon"] for r in blimp} == {"anaphor_agreement", "filler_gap"}
    sc = load_benchmark(tmp_path / "sc").dataset.to_list()
    assert [(r["item_id"], r["label"], r["text"]) for r in sc[:2]] == [
        ("s1", 1, "He ate the bread."), ("s1", 0, "He hated food.")]
    assert sc[2]["text"] == "She passed the test." and sc[2]["prompt"] == " ".join(STORIES[1][1])
    tsc = load_benchmark(tmp_path / "tsc").dataset.to_list()
    rights = {sid: right for sid, _, right, _ in STORIES}
    negatives = {r["item_id"]: r["text"] for r in tsc if r["label"] == 0}
    assert all(neg in rights.values() and neg != rights[sid] for sid, neg in negatives.items())

    model, tok = text_model(tmp_path / "pythia-tiny")
    doc = evaluate_model(tmp_path / "pythia-tiny", {"blimp": str(tmp_path / "blimp-bench"), "storycloze": str(tmp_path / "sc"),
                                                    "tSC": str(tmp_path / "tsc")}, progress=False, batch_size=4)
    # reference: paper rules on whole texts (a story is its prompt and ending as one text)
    for name, rows, tie in (("blimp", blimp, 0.5), ("storycloze", sc, 0.0), ("topic_storycloze", tsc, 0.0)):
        scores = {(r["item_id"], r["label"]): mean_logprob(model, tok, " ".join(filter(None, [r["prompt"], r["text"]])))
                  for r in rows}
        items = sorted({r["item_id"] for r in rows})
        decisions = {i: 1.0 if scores[(i, 1)] > scores[(i, 0)] else (tie if scores[(i, 1)] == scores[(i, 0)] else 0.0)
                     for i in items}
        result = doc["results"][name]
        if name == "blimp":
            by = {term: np.mean([decisions[f"{uid}/{k}"] for k in range(len(pairs))])
                  for uid, (term, pairs) in BLIMP.items()}
            assert result["by_phenomenon"] == pytest.approx(by, abs=1e-12)
            assert result["accuracy"] == pytest.approx(np.mean(list(by.values())), abs=1e-12)
        else:
            assert result["accuracy"] == pytest.approx(np.mean(list(decisions.values())), abs=1e-12)
    assert doc["tokenizer"]["text"] == str(tmp_path / "pythia-tiny") and doc["tokenizer"]["units"] is None
    split = evaluate_model(tmp_path / "pythia-tiny", {"storycloze": str(tmp_path / "sc")}, scoring="sum",
                           progress=False)
    assert split["results"]["storycloze"]["scoring"] == "sum"
