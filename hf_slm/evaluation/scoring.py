"""Log-likelihood scoring of continuations under a causal LM (unit LMs and text LMs alike).

The engine scores ``prefix + sequence`` in one forward pass and sums the log-probabilities of the
``sequence`` tokens only. Unit LMs follow contract 2: an utterance is scored after a leading EOS, the token
that precedes every new utterance in the packed training stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from hf_slm.data.tokens import eos_id
from hf_slm.evaluation.rules import RULES, Score, apply_rule, compare

__all__ = ["RULES", "Score", "apply_rule", "compare", "score_texts", "score_units", "sequence_logprobs", "unit_sequence"]


def _context_length(model: torch.nn.Module) -> int | None:
    config = getattr(model, "config", None)
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(config, attr, None)
        if value:
            return int(value)
    return None


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _fit_to_context(prefix: list[int], seq: list[int], max_length: int | None, index: int) -> list[int]:
    """Left-truncate ``prefix`` so ``prefix + seq`` fits ``max_length``; raise when ``seq`` cannot fit."""
    if max_length is None or len(prefix) + len(seq) <= max_length:
        return prefix
    needed = len(seq) + (1 if prefix else 0)
    if needed > max_length:
        raise ValueError(
            f"sequence {index} has {len(seq)} tokens to score (+{needed - len(seq)} of context), more than the "
            f"model's context of {max_length}; shorten it or pass a larger max_length"
        )
    return prefix[len(prefix) + len(seq) - max_length :]


def _score_batch(
    model: torch.nn.Module, rows: list[tuple[list[int], int]], device: torch.device
) -> list[Score]:
    """Score a batch of ``(ids, first_scored_position)`` rows, right-padded (pad positions are masked)."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    scored = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, start) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[i, : len(ids)] = 1
        scored[i, start : len(ids)] = True
    input_ids, attention = input_ids.to(device), attention.to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )
    with autocast:
        logits = model(input_ids=input_ids, attention_mask=attention).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_lp = logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1).double().cpu()
    mask = scored[:, 1:]
    sums = torch.where(mask, token_lp, 0.0).sum(dim=1)
    counts = mask.sum(dim=1)
    return [(float(s), int(n)) for s, n in zip(sums.tolist(), counts.tolist(), strict=True)]


def sequence_logprobs(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    prefix: Sequence[Sequence[int]] | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_length: int | None = None,
) -> list[Score]:
    """Summed log-probability (nats) and number of scored tokens of each sequence under a causal LM.

    Each ``sequences[i]`` is scored conditioned on ``prefix[i]`` (whose tokens are context only). Without a
    prefix, the first token of a sequence has no context and is not scored. Rows are sorted by length,
    batched with right padding and an attention mask, and returned in input order. Runs under
    ``torch.inference_mode`` in eval mode (the model's mode is restored), with bf16 autocast on CUDA.

    ``max_length`` defaults to the model's context (``max_position_embeddings`` / ``n_positions``). When
    ``prefix + sequence`` is longer, the prefix is truncated from the left; a sequence that does not fit
    with at least one token of context raises ``ValueError``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if prefix is not None and len(prefix) != len(sequences):
        raise ValueError(f"got {len(prefix)} prefixes for {len(sequences)} sequences")
    max_length = max_length or _context_length(model)
    device = torch.device(device) if device is not None else _model_device(model)
    rows = []
    for i, seq in enumerate(sequences):
        seq = [int(t) for t in seq]
        ctx = _fit_to_context([int(t) for t in prefix[i]] if prefix is not None else [], seq, max_length, i)
        rows.append((ctx + seq, max(len(ctx), 1)))
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    results: list[Score | None] = [None] * len(rows)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for lo in range(0, len(order), batch_size):
                chunk = order[lo : lo + batch_size]
                batch = [rows[i] for i in chunk]
                if max(len(ids) for ids, _ in batch) < 2:
                    scores = [(0.0, 0)] * len(batch)
                else:
                    scores = _score_batch(model, batch, device)
                for i, score in zip(chunk, scores, strict=True):
                    results[i] = score
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def unit_sequence(units: Sequence[int], n_units: int) -> list[int]:
    """LM ids for one utterance as scored: a leading EOS (id ``K``) followed by its units (contract 2)."""
    ids = [int(u) for u in units]
    bad = [u for u in ids if not 0 <= u < n_units]
    if bad:
        raise ValueError(f"unit ids must lie in [0, {n_units}), got {bad[:5]}")
    return [eos_id(n_units), *ids]


def score_units(
    model: torch.nn.Module,
    units_list: Sequence[Sequence[int]],
    n_units: int,
    prompts: Sequence[Sequence[int]] | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_length: int | None = None,
) -> list[Score]:
    """Score unit sequences under a unit LM: every unit is scored, after EOS (+ the optional prompt units).

    ``prompts[i]`` (units, possibly empty) is context for ``units_list[i]``, as when a story prompt and its
    ending are separate utterance segments; the EOS precedes the prompt.
    """
    if prompts is not None and len(prompts) != len(units_list):
        raise ValueError(f"got {len(prompts)} prompts for {len(units_list)} unit sequences")
    contexts = [unit_sequence(p, n_units) for p in (prompts if prompts is not None else [[]] * len(units_list))]
    sequences = [unit_sequence(u, n_units)[1:] for u in units_list]
    return sequence_logprobs(model, sequences, contexts, batch_size=batch_size, device=device, max_length=max_length)


def _start_ids(tokenizer) -> list[int]:
    """The document-start context of a text tokenizer: BOS, else EOS (GPT-2 / Pythia), else nothing."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [int(token_id)]
    return []


def score_texts(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    prefixes: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_length: int | None = None,
) -> list[Score]:
    """Score texts (optionally after text prefixes) under a text causal LM with its tokenizer.

    Texts and prefixes are tokenized separately without special tokens, so whitespace between a prefix and
    its continuation belongs in the text (``" ending"``). The context starts with the tokenizer's BOS token,
    or its EOS when it has no BOS (GPT-2 / Pythia documents are separated by ``<|endoftext|>``), so every
    text token is scored.
    """
    if prefixes is not None and len(prefixes) != len(texts):
        raise ValueError(f"got {len(prefixes)} prefixes for {len(texts)} texts")
    start = _start_ids(tokenizer)

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    sequences = [encode(t) for t in texts]
    contexts = [start + encode(p) for p in prefixes] if prefixes is not None else [list(start) for _ in texts]
    return sequence_logprobs(model, sequences, contexts, batch_size=batch_size, device=device, max_length=max_length)
