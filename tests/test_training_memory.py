import pytest

from hf_slm.training import ConfigError
from hf_slm.training.memory import GIB, MemoryModel, divisors, largest_fitting


def test_divisors_largest_first():
    assert divisors(12) == [12, 6, 4, 3, 2, 1]
    assert divisors(1) == [1]


def test_largest_fitting_divisor():
    memory = MemoryModel(fixed=10 * GIB, per_sequence=2 * GIB)  # m sequences need 10 + 2m GiB
    assert largest_fitting(12, memory, budget=21 * GIB) == 4  # 5 would fit, but does not divide 12
    assert largest_fitting(12, memory, budget=40 * GIB) == 12
    assert largest_fitting(7, memory, budget=23 * GIB) == 1  # 7 needs 24


def test_nothing_fits_says_how_much_is_needed():
    with pytest.raises(ConfigError, match=r"about 12\.0 GiB.*only 11\.0 GiB"):
        largest_fitting(8, MemoryModel(fixed=10 * GIB, per_sequence=2 * GIB), budget=11 * GIB)


def test_measurement_fits_the_affine_model_and_adds_adamw_state(monkeypatch):
    """The CUDA memory counters are replaced by a fake that reports 1000 + 300 m bytes for m sequences."""
    import torch
    from transformers import LlamaForCausalLM

    from hf_slm.training.memory import measure_memory
    from hf_slm.training.sizes import llama_config

    model = LlamaForCausalLM(llama_config("demo-xs", 8, 16))
    seen = []
    real_forward = model.forward

    def forward(*args, **kwargs):
        seen.append(tuple(kwargs["input_ids"].shape))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    for name in ("empty_cache", "reset_peak_memory_stats", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, lambda *a: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 1000 + 300 * seen[-1][0])
    contexts = []

    def autocast():
        contexts.append(1)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    memory = measure_memory(model, 16, 8, autocast)
    n_params = sum(p.numel() for p in model.parameters())
    assert seen == [(1, 16), (2, 16)] and len(contexts) == 2  # a fresh autocast context per pass
    assert memory.per_sequence == 300 and memory.fixed == 1000 + 2 * 4 * n_params
    assert all(p.grad is None for p in model.parameters())  # gradients of the probe are cleared
