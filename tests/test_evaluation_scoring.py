import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import (
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from hf_slm.data.tokens import eos_id, vocab_size
from hf_slm.evaluation import apply_rule, compare, score_texts, score_units, sequence_logprobs, unit_sequence

K = 12


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size(K), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def hand_logprob(model, ids, first_scored):
    """Unbatched reference: sum of log_softmax(logits[t-1])[ids[t]] for t >= first_scored."""
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    return sum(float(logprobs[t - 1, ids[t]]) for t in range(first_scored, len(ids)))


def random_sequences(n, seed, low=1, high=20):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, K, size=rng.integers(low, high)).tolist() for _ in range(n)]


def test_matches_hand_computation_and_is_batch_invariant(llama):
    seqs = random_sequences(9, seed=1, low=2)
    expected = [(hand_logprob(llama, s, 1), len(s) - 1) for s in seqs]
    for batch_size in (1, 3, 16):
        got = sequence_logprobs(llama, seqs, batch_size=batch_size)
        assert [n for _, n in got] == [n for _, n in expected]
        np.testing.assert_allclose([s for s, _ in got], [s for s, _ in expected], rtol=1e-5, atol=1e-4)


def test_prefix_tokens_are_context_only(llama):
    seqs, prefixes = random_sequences(6, seed=2), random_sequences(6, seed=3)
    got = sequence_logprobs(llama, seqs, prefixes, batch_size=4)
    for (score, n), seq, pre in zip(got, seqs, prefixes, strict=True):
        assert n == len(seq)
        assert score == pytest.approx(hand_logprob(llama, pre + seq, len(pre)), abs=1e-4)


def test_units_are_scored_after_a_leading_eos(llama):
    units = random_sequences(5, seed=4)
    assert unit_sequence([3, 1], K) == [eos_id(K), 3, 1]
    got = score_units(llama, units, K, batch_size=2)
    for (score, n), u in zip(got, units, strict=True):
        assert n == len(u)
        assert score == pytest.approx(hand_logprob(llama, [eos_id(K), *u], 1), abs=1e-4)
    prompted = score_units(llama, [[5, 6]], K, prompts=[[1, 2, 3]])
    assert prompted[0][1] == 2
    assert prompted[0][0] == pytest.approx(hand_logprob(llama, [eos_id(K), 1, 2, 3, 5, 6], 4), abs=1e-4)
    with pytest.raises(ValueError, match="unit ids"):
        unit_sequence([K], K)


def test_long_prefix_is_truncated_from_the_left_and_long_sequences_raise(llama):
    prefix, seq = list(range(10)), [4, 5, 6]
    (score, n), = sequence_logprobs(llama, [seq], [prefix], max_length=7)
    (ref_score, ref_n), = sequence_logprobs(llama, [seq], [prefix[-4:]])
    assert n == ref_n == 3 and score == pytest.approx(ref_score, abs=1e-5)
    with pytest.raises(ValueError, match="context of 3"):
        sequence_logprobs(llama, [seq], [prefix], max_length=3)
    with pytest.raises(ValueError, match="context of 64"):
        sequence_logprobs(llama, [[1] * 65])


def test_model_mode_is_restored_and_empty_input_is_fine(llama):
    llama.train()
    try:
        assert sequence_logprobs(llama, [[3], []]) == [(0.0, 0), (0.0, 0)]
        assert llama.training
    finally:
        llama.eval()


def test_rules_and_ties():
    scores = [(-6.0, 3), (-4.0, 1)]
    np.testing.assert_allclose(apply_rule(scores, "sum"), [-6.0, -4.0])
    np.testing.assert_allclose(apply_rule(scores, "mean"), [-2.0, -4.0])
    with pytest.raises(ValueError, match="unknown scoring rule"):
        apply_rule(scores, "max")
    np.testing.assert_array_equal(compare([1.0, 0.0, 2.0], [0.0, 1.0, 2.0]), [1.0, 0.0, 0.5])


def word_tokenizer(special: bool) -> PreTrainedTokenizerFast:
    words = ["[UNK]", "<|endoftext|>", "the", "cat", "sat", "on", "mat", "dog", "ran"]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    extra = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"} if special else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", **extra)


def test_score_texts_on_a_local_gpt_neox():
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=9, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=32,
    )
    model = GPTNeoXForCausalLM(config).eval()
    tok = word_tokenizer(special=True)
    score, n = score_texts(model, tok, ["the cat sat"])[0]
    assert n == 3 and score == pytest.approx(hand_logprob(model, [1, 2, 3, 4], 1), abs=1e-4)
    (s1, n1), (s2, n2) = score_texts(model, tok, ["sat on", "ran"], prefixes=["the cat", "the dog"])
    assert (n1, n2) == (2, 1)
    assert s1 == pytest.approx(hand_logprob(model, [1, 2, 3, 4, 5], 3), abs=1e-4)
    assert s2 == pytest.approx(hand_logprob(model, [1, 2, 7, 8], 3), abs=1e-4)
    plain = score_texts(model, word_tokenizer(special=False), ["the cat sat"])[0]
    assert plain[1] == 2 and plain[0] == pytest.approx(hand_logprob(model, [2, 3, 4], 1), abs=1e-4)


def test_package_import_does_not_load_evaluate():
    code = (
        "import sys, hf_slm.evaluation as ev; ev.metrics_path('sblimp'); ev.evaluate_benchmark; "
        "assert 'evaluate' not in sys.modules, 'evaluate imported'"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_on_cuda_is_close_to_fp32(llama):
    seqs = random_sequences(8, seed=5, low=2)
    cpu = sequence_logprobs(llama, seqs)
    gpu = sequence_logprobs(llama.to("cuda"), seqs)
    llama.to("cpu")
    np.testing.assert_allclose([s for s, _ in gpu], [s for s, _ in cpu], rtol=0.05, atol=0.5)
