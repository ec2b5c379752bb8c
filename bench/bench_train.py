"""Training throughput per model size: tokens/s, MFU and peak memory of our recipe vs. plain transformers.

Both variants train ``LlamaForCausalLM`` of the size (``hf_slm.training.sizes``) on random unit ids at context
``--ctx`` with the same micro-batch, measured in the same process after ``--warmup`` steps:
- ``plain``: bf16 autocast + SDPA, ``torch.optim.AdamW`` (for-each), ``model(..., labels=...)``, no compile;
- ``recipe``: what ``hf_slm.training`` runs (``build_model`` / ``make_optimizer``: fused AdamW on CUDA), bf16
  autocast, SDPA, no KV cache built in training, plus ``torch.compile`` of the model (``--no-compile`` to leave
  it out, ``--compile-mode max-autotune`` to try another mode).
The micro-batch, the same for both, is the largest power of two up to 64 that fits (measured), unless given.
MFU = tokens/s x (6 N + 12 L d T) / peak bf16 FLOP/s of the device (``trainer.PEAK_BF16_FLOPS``).

    python bench/bench_train.py --sizes 20M 85M 155M 309M 823M            # on an H100 / H200
    python bench/bench_train.py --sizes demo-s --ctx 256 --micro-batch 4 --steps 3 --warmup 1   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hf_slm.training.config import TrainConfig
from hf_slm.training.memory import largest_fitting, measure_memory, usable_memory
from hf_slm.training.record import flops_with_attention
from hf_slm.training.sizes import count_parameters, get_size
from hf_slm.training.trainer import build_model, make_optimizer, peak_flops

MAX_MICRO_BATCH = 64


def fitting_micro_batch(size: str, ctx: int, device: torch.device, n_units: int = 500) -> int:
    """The largest power of two up to ``MAX_MICRO_BATCH`` that fits (the trainer's measured choice); 8 on CPU."""
    if device.type != "cuda":
        return 8
    config = TrainConfig(size=size, n_units=n_units, block_size=ctx, tracker=None)
    model = build_model(config).to(device)
    memory = measure_memory(model, ctx, n_units, lambda: torch.autocast("cuda", dtype=torch.bfloat16))
    del model
    torch.cuda.empty_cache()
    return largest_fitting(MAX_MICRO_BATCH, memory, usable_memory(device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(size: str, variant: str, ctx: int, micro: int, steps: int, warmup: int, device: torch.device,
            compile_model: bool, compile_mode: str | None = None, n_units: int = 500) -> dict:
    """Tokens/s, MFU and peak memory of ``steps`` optimizer steps of one micro-batch each."""
    torch.manual_seed(0)
    config = TrainConfig(size=size, n_units=n_units, block_size=ctx, batch_size=micro, tokens=ctx * micro,
                         mixed_precision="bf16", compile=compile_model and variant == "recipe",
                         compile_mode=compile_mode, tracker=None)
    model = build_model(config).to(device)
    n_params, _ = count_parameters(model)
    if variant == "recipe":
        optimizer = make_optimizer(model, config, device)
        step_model = torch.compile(model, mode=compile_mode) if config.compile else model
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        step_model = model
    x = torch.randint(0, n_units, (micro, ctx), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    extra = {"use_cache": False} if variant == "recipe" else {}  # plain = what a user writes first

    def step() -> None:
        with autocast:
            loss = step_model(input_ids=x, labels=x, **extra).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    tokens_per_s = steps * micro * ctx / seconds
    shape = get_size(size)
    flops_per_token = flops_with_attention(n_params, 1, shape.n_layers, shape.d_model, ctx)
    peak = peak_flops(device)
    return {
        "size": size, "variant": variant, "N": n_params, "ctx": ctx, "micro_batch": micro,
        "tokens_per_s": round(tokens_per_s), "mfu": None if peak is None else tokens_per_s * flops_per_token / peak,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["20M", "85M", "155M", "309M", "823M"])
    parser.add_argument("--ctx", type=int, default=2050)
    parser.add_argument("--micro-batch", type=int, default=None, help="default: the largest power of two that fits, measured as the trainer does")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    parser.add_argument("--no-compile", action="store_true", help="recipe without torch.compile")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode of the recipe (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")
    for size in args.sizes:
        micro = args.micro_batch or fitting_micro_batch(size, args.ctx, device)
        rows = [measure(size, v, args.ctx, micro, args.steps, args.warmup, device, not args.no_compile, args.compile_mode)
                for v in ("plain", "recipe")]
        for row in rows:
            if args.json:
                print(json.dumps(row))
            else:
                mfu = "n/a" if row["mfu"] is None else f"{row['mfu']:.3f}"
                mem = "n/a" if row["peak_mem_gib"] is None else f"{row['peak_mem_gib']:.1f} GiB"
                print(f"{size:>6} {row['variant']:>6}  N={row['N']:>11,}  {row['tokens_per_s']:>10,} tok/s  "
                      f"MFU {mfu}  peak {mem}")
        print(f"{size:>6} speed-up recipe / plain: {rows[1]['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
