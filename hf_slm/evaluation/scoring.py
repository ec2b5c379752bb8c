"""Log-likelihood scoring of continuations under a causal LM (unit LMs and text LMs alike).

The engine scores ``prefix + sequence`` in one forward pass and sums the log-probabilities of the
``sequence`` tokens only. Unit LMs follow contract 2: an utterance is scored after a leading EOS, the token
that precedes every new utterance in the packed training stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hf_slm.data.tokens import eos_id
from hf_slm.evaluation.rules import RULES, Score, apply_rule, compare

__all__ = [
    "RULES", "Score", "apply_rule", "compare", "process_share", "score_texts", "score_units", "sequence_logprobs",
    "unit_sequence",
]


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


def _fit_to_context(prefix: list[int], seq: list[int], max_length: int | None, name: str) -> list[int]:
    """Left-truncate ``prefix`` so ``prefix + seq`` fits ``max_length``; raise when ``seq`` cannot fit."""
    if max_length is None or len(prefix) + len(seq) <= max_length:
        return prefix
    needed = len(seq) + (1 if prefix else 0)
    if needed > max_length:
        raise ValueError(
            f"{name} has {len(seq)} tokens to score (+{needed - len(seq)} of context), more than the "
            f"model's context of {max_length}; shorten it or pass a larger max_length"
        )
    return prefix[len(prefix) + len(seq) - max_length :]


def _score_batch(
    model: torch.nn.Module, rows: list[tuple[list[int], int]], device: torch.device
) -> list[Score]:
    """Score a batch of ``(ids, first_scored_position)`` rows, right-padded.

    No attention mask is passed: with right padding a causal LM's real positions only ever attend to real
    positions before them, so their logits are those of the unpadded row, and the forward keeps the fused causal
    attention kernel. Padded positions are left out of the sums.
    """
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.zeros((len(rows), width), dtype=torch.long)
    scored = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, start) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        scored[i, start : len(ids)] = True
    input_ids = input_ids.to(device, non_blocking=True)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )
    with autocast:
        logits = model(input_ids=input_ids, use_cache=False).logits
    # -cross_entropy is log_softmax + gather in one kernel, in fp32 whatever the autocast dtype
    token_lp = -F.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none")
    mask = scored[:, 1:].to(device, non_blocking=True)
    sums = torch.where(mask, token_lp.double(), 0.0).sum(dim=1).cpu()
    counts = mask.sum(dim=1).cpu()
    return [(float(s), int(n)) for s, n in zip(sums.tolist(), counts.tolist(), strict=True)]


def _batches(
    order: list[int], lengths: list[int], batch_size: int, max_tokens: int | None, min_fill: float = 0.8
) -> list[list[int]]:
    """Consecutive rows of ``order`` (longest first): at most ``batch_size`` rows and, when set, at most
    ``max_tokens`` padded tokens per batch (a longer row gets a batch of its own); a row shorter than ``min_fill``
    of the batch's width starts a new batch, so padding stays under ~20 % of a batch."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        full = len(current) >= batch_size or (max_tokens and (len(current) + 1) * width > max_tokens)
        if current and (full or lengths[i] < min_fill * width):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def process_share(order: Sequence[int], process_index: int, num_processes: int) -> list[int]:
    """The rows process ``process_index`` of ``num_processes`` scores: every n-th row of the length order, so
    each process gets a similar mix of long and short rows."""
    if not 0 <= process_index < num_processes:
        raise ValueError(f"need 0 <= process_index < num_processes, got {process_index}, {num_processes}")
    return list(order[process_index::num_processes])


def sequence_logprobs(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    prefix: Sequence[Sequence[int]] | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_length: int | None = None,
    max_tokens: int | None = None,
    names: Sequence[str] | None = None,
    state=None,
    progress: bool = False,
) -> list[Score]:
    """Summed log-probability (nats) and number of scored tokens of each sequence under a causal LM.

    Each ``sequences[i]`` is scored conditioned on ``prefix[i]`` (whose tokens are context only). Without a
    prefix, the first token of a sequence has no context and is not scored. Rows are sorted by length and
    batched with right padding (at most ``batch_size`` rows and, when ``max_tokens`` is
    set, at most that many padded tokens per batch), and returned in input order. Runs under
    ``torch.inference_mode`` in eval mode (the model's mode is restored), bf16 autocast on CUDA, fp32 on CPU.

    ``max_length`` defaults to the model's context (``max_position_embeddings`` / ``n_positions``). When
    ``prefix + sequence`` is longer, the prefix is truncated from the left; a sequence that does not fit
    with at least one token of context raises ``ValueError`` naming it (``names[i]`` when given).

    ``state`` (an ``accelerate.PartialState``) with several processes scores every ``num_processes``-th row
    of the length order on each process and gathers all scores on every process.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if prefix is not None and len(prefix) != len(sequences):
        raise ValueError(f"got {len(prefix)} prefixes for {len(sequences)} sequences")
    if names is not None and len(names) != len(sequences):
        raise ValueError(f"got {len(names)} names for {len(sequences)} sequences")
    max_length = max_length or _context_length(model)
    device = torch.device(device) if device is not None else _model_device(model)
    rows = []
    for i, seq in enumerate(sequences):
        seq = [int(t) for t in seq]
        name = f"sequence {i}" if names is None else names[i]
        ctx = _fit_to_context([int(t) for t in prefix[i]] if prefix is not None else [], seq, max_length, name)
        rows.append((ctx + seq, max(len(ctx), 1)))
    lengths = [len(ids) for ids, _ in rows]
    order = sorted(range(len(rows)), key=lambda i: -lengths[i])
    distributed = state is not None and state.num_processes > 1
    if distributed:
        order = process_share(order, state.process_index, state.num_processes)
    scored: list[tuple[int, Score]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batches = _batches(order, lengths, batch_size, max_tokens)
            for chunk in tqdm(batches, desc="scoring", unit="batch", disable=not progress):
                batch = [rows[i] for i in chunk]
                if max(len(ids) for ids, _ in batch) < 2:
                    scores = [(0.0, 0)] * len(batch)
                else:
                    scores = _score_batch(model, batch, device)
                scored.extend(zip(chunk, scores, strict=True))
    finally:
        model.train(was_training)
    if distributed:
        from accelerate.utils import gather_object

        scored = gather_object(scored)
    results: list[Score | None] = [None] * len(rows)
    for i, score in scored:
        results[i] = tuple(score)  # type: ignore[assignment]
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"rows {missing[:5]} were scored by no process")
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
    **kwargs,
) -> list[Score]:
    """Score unit sequences under a unit LM: every unit is scored, after EOS (+ the optional prompt units).

    ``prompts[i]`` (units, possibly empty) is context for ``units_list[i]``, as when a story prompt and its
    ending are separate utterance segments; the EOS precedes the prompt. ``kwargs`` go to
    :func:`sequence_logprobs` (``max_tokens``, ``names``, ``state``, ``progress``).
    """
    if prompts is not None and len(prompts) != len(units_list):
        raise ValueError(f"got {len(prompts)} prompts for {len(units_list)} unit sequences")
    contexts = [unit_sequence(p, n_units) for p in (prompts if prompts is not None else [[]] * len(units_list))]
    sequences = [unit_sequence(u, n_units)[1:] for u in units_list]
    return sequence_logprobs(model, sequences, contexts, batch_size=batch_size, device=device, max_length=max_length,
                             **kwargs)


def start_ids(tokenizer) -> list[int]:
    """The document-start context of a text tokenizer: BOS, else EOS (GPT-2 / Pythia), else nothing."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [int(token_id)]
    return []


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def score_texts(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    prefixes: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    max_length: int | None = None,
    **kwargs,
) -> list[Score]:
    """Score texts (optionally after text prefixes) under a text causal LM with its tokenizer.

    Texts and prefixes are tokenized separately without special tokens, so whitespace between a prefix and
    its continuation belongs in the text (``" ending"``). The context starts with the tokenizer's BOS token,
    or its EOS when it has no BOS (GPT-2 / Pythia documents are separated by ``<|endoftext|>``), so every
    text token is scored. ``kwargs`` go to :func:`sequence_logprobs`.
    """
    if prefixes is not None and len(prefixes) != len(texts):
        raise ValueError(f"got {len(prefixes)} prefixes for {len(texts)} texts")
    start = start_ids(tokenizer)
    sequences = [encode_text(tokenizer, t) for t in texts]
    contexts = (
        [start + encode_text(tokenizer, p) for p in prefixes] if prefixes is not None else [list(start) for _ in texts]
    )
    return sequence_logprobs(model, sequences, contexts, batch_size=batch_size, device=device, max_length=max_length,
                             **kwargs)
