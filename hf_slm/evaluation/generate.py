"""Let a unit LM speak: sample a continuation of a prompt (KV-cached ``model.generate``), stop at EOS, vocode.

``hf-slm generate MODEL [--prompt-audio WAV | --prompt-units "3 17 9 ..."] -o out.wav`` is the command line.
Token ids follow contract 2 (units 0..K-1, EOS = K, pad = K + 1). The prompt is ``[EOS] + prompt units``: in
training every utterance follows an EOS, so an empty prompt asks for a fresh utterance.

For the study report, :func:`continuations_html` renders continuations (WAV, base64-embedded) as HTML
``<audio>`` players, and :func:`write_continuations` also writes the WAV files::

    from hf_slm.evaluation.generate import generate_continuations, write_continuations
    items = generate_continuations(model, prompts={"story-3": units}, vocoder=vocoder, seed=0)
    html = write_continuations(items, "report_audio/85M", title="85M continuations")
"""

from __future__ import annotations

import argparse
import base64
import html as html_lib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Continuation:
    """One prompt and what the model said after it (units and audio at ``sample_rate``)."""

    name: str
    prompt_units: np.ndarray
    units: np.ndarray
    stopped_at_eos: bool
    prompt_audio: np.ndarray | None
    audio: np.ndarray
    sample_rate: int


def generate_units(
    model: Any, prompt_units: Sequence[int], n_units: int, max_new_units: int = 250, temperature: float = 1.0,
    top_k: int | None = None, seed: int | None = 0,
) -> tuple[np.ndarray, bool]:
    """Sample up to ``max_new_units`` units after ``prompt_units`` with ``model.generate`` (KV cache on).

    ``temperature=0`` decodes greedily. Generation stops at EOS (K), which is not returned; pad (K + 1) is
    never sampled. Returns (units of the continuation, whether it stopped at EOS).
    """
    import torch

    k = n_units
    prompt = np.asarray(prompt_units, dtype=np.int64)
    if prompt.size and (prompt.min() < 0 or prompt.max() >= k):
        raise ValueError(f"prompt units must be in 0..{k - 1}; got {int(prompt.min())}..{int(prompt.max())}")
    vocab = model.config.vocab_size
    if vocab < k + 2:
        raise ValueError(f"the model's vocabulary ({vocab}) is smaller than K + 2 = {k + 2} (units, EOS, pad)")
    if max_new_units < 1:
        raise ValueError(f"max_new_units must be >= 1, got {max_new_units}")
    device = next(model.parameters()).device
    ids = torch.as_tensor(np.concatenate([[k], prompt]), device=device).reshape(1, -1)
    if seed is not None:
        torch.manual_seed(seed)
    sample = temperature > 0
    kwargs = dict(do_sample=True, temperature=temperature, top_k=top_k or 0) if sample else dict(do_sample=False)
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_units, eos_token_id=k, pad_token_id=k + 1,
        suppress_tokens=[k + 1, *range(k + 2, vocab)], use_cache=True, **kwargs,
    )
    new = out[0, ids.shape[1]:].cpu().numpy()
    stop = np.flatnonzero(new == k)
    return (new[: stop[0]] if stop.size else new).astype(np.int64), bool(stop.size)


def generate_continuations(
    model: Any, prompts: Mapping[str, Sequence[int]], vocoder: Any, max_new_units: int = 250,
    temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
) -> list[Continuation]:
    """A :class:`Continuation` per named prompt (seed ``seed + i`` for the i-th); ``vocoder`` is a callable
    ``units -> wave`` with ``sample_rate`` and ``n_units`` (``UnitVocoder``, ``GriffinLimVocoder``)."""
    items = []
    for i, (name, prompt) in enumerate(prompts.items()):
        units, eos = generate_units(model, prompt, vocoder.n_units, max_new_units, temperature, top_k, seed + i)
        prompt = np.asarray(prompt, dtype=np.int64)
        items.append(Continuation(
            name=name, prompt_units=prompt, units=units, stopped_at_eos=eos,
            prompt_audio=vocoder(prompt) if prompt.size else None,
            audio=vocoder(units) if units.size else np.zeros(0, np.float32), sample_rate=vocoder.sample_rate,
        ))
    return items


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV bytes of a float wave in [-1, 1]."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(wave, dtype=np.float32), -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def audio_player(wave: np.ndarray, sample_rate: int) -> str:
    """An HTML ``<audio controls>`` element with the WAV embedded as a base64 data URI."""
    data = base64.b64encode(wav_bytes(wave, sample_rate)).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def continuations_html(items: Sequence[Continuation], title: str | None = None, note: str | None = None) -> str:
    """An HTML snippet (a ``<section>`` with a table): per item its name, the prompt and the continuation as
    players, and the unit counts. ``note`` says how the audio was made (e.g. "Griffin-Lim, not a vocoder")."""
    rows = []
    for it in items:
        prompt = audio_player(it.prompt_audio, it.sample_rate) if it.prompt_audio is not None else "(none)"
        cont = audio_player(it.audio, it.sample_rate) if it.audio.size else "(no units before EOS)"
        rows.append(f"<tr><td>{html_lib.escape(it.name)}</td><td>{prompt}</td><td>{cont}</td>"
                    f"<td>{len(it.prompt_units)} + {len(it.units)}{' (EOS)' if it.stopped_at_eos else ''}</td></tr>")
    head = f"<h3>{html_lib.escape(title)}</h3>" if title else ""
    foot = f"<p><em>{html_lib.escape(note)}</em></p>" if note else ""
    return (f'<section class="continuations">{head}<table><thead><tr><th>prompt</th><th>prompt audio</th>'
            f"<th>continuation</th><th>units (prompt + new)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{foot}</section>")


def write_continuations(items: Sequence[Continuation], out_dir: str | Path, title: str | None = None,
                        note: str | None = None) -> str:
    """Write ``<name>.prompt.wav`` / ``<name>.continuation.wav`` per item into ``out_dir`` and return
    :func:`continuations_html` of them (the snippet also goes to ``out_dir/continuations.html``)."""
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for it in items:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in it.name)
        if it.prompt_audio is not None:
            sf.write(out / f"{safe}.prompt.wav", it.prompt_audio, it.sample_rate, subtype="PCM_16")
        sf.write(out / f"{safe}.continuation.wav", it.audio, it.sample_rate, subtype="PCM_16")
    snippet = continuations_html(items, title, note)
    (out / "continuations.html").write_text(snippet)
    return snippet


# -- command line ------------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hf-slm generate``."""
    p = subparsers.add_parser(
        "generate", help="continue a spoken prompt with a unit LM and write the audio",
        description="Sample units from a trained SLM (model.generate with KV cache, stopping at EOS) after a "
        "prompt given as audio (encoded with --tokenizer) or as units, then turn prompt + continuation into "
        "audio with a unit vocoder: a CodeHiFiGAN folder (hf_slm.tts.vocoder; convert TWIST's with "
        "convert_twist_checkpoint) or 'griffin-lim' for log-mel tokenizers (a spectrogram inversion, not a "
        "neural vocoder).",
    )
    p.add_argument("model", help="trained model folder (save_pretrained) or Hub id")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt-audio", metavar="WAV", help="prompt audio file (needs --tokenizer)")
    prompt.add_argument("--prompt-units", metavar="UNITS", help='prompt units, e.g. "12 7 33" (default: none)')
    p.add_argument("--tokenizer", help="SpeechTokenizer folder or Hub id (for --prompt-audio and griffin-lim)")
    p.add_argument("--vocoder", required=True, help="unit vocoder folder / Hub id, or 'griffin-lim'")
    p.add_argument("--reference-audio", nargs="*", default=None, metavar="WAV",
                   help="griffin-lim: speech that sets band levels and unit durations (default: the prompt audio, "
                   "else eSpeak reading a few sentences)")
    p.add_argument("--max-new-units", type=int, default=250, help="most units to sample (default %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default %(default)s)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--continuation-only", action="store_true", help="write only the new units' audio")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("-o", "--output", required=True, help="output WAV file (a .units.txt with the units beside it)")
    p.set_defaults(func=_run_cli)


def _parse_units(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError as err:
        raise ValueError(f"--prompt-units must be integers separated by spaces, got {text!r}") from err


def _reference_waves(args: argparse.Namespace, prompt_wave: np.ndarray | None) -> list[np.ndarray]:
    from hf_slm.units import load_audio

    if args.reference_audio:
        return [load_audio(path, sample_rate=16000) for path in args.reference_audio]
    if prompt_wave is not None:
        return [prompt_wave]
    from hf_slm.tts import TTSPipeline, load_voice
    from hf_slm.tts.judge import SENTENCES

    voice = TTSPipeline(load_voice("espeak", "en-us"))
    return [voice.synthesize(s)[0] for s in SENTENCES]


def _run_cli(args: argparse.Namespace) -> int:
    import soundfile as sf
    import torch
    from transformers import AutoModelForCausalLM

    from hf_slm.data.unit_dataset import looks_like_hub_id
    from hf_slm.tts.vocoder import GriffinLimVocoder, UnitVocoder
    from hf_slm.units import SpeechTokenizer, load_audio

    if not Path(args.model).exists() and not looks_like_hub_id(args.model):
        raise FileNotFoundError(f"model {args.model!r}: no such folder, and not a Hub id (owner/name)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.temperature < 0:
        raise ValueError(f"--temperature must be >= 0, got {args.temperature}")
    needs_tokenizer = args.prompt_audio is not None or args.vocoder == "griffin-lim"
    if needs_tokenizer and not args.tokenizer:
        raise ValueError("--prompt-audio and --vocoder griffin-lim need --tokenizer")
    tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else None
    prompt_wave = None
    if args.prompt_audio is not None:
        prompt_wave = load_audio(args.prompt_audio, sample_rate=tokenizer.sample_rate)
        prompt = np.asarray(tokenizer.encode(prompt_wave).units, dtype=np.int64)
    else:
        prompt = np.asarray(_parse_units(args.prompt_units) if args.prompt_units else [], dtype=np.int64)
    if args.vocoder == "griffin-lim":
        vocoder = GriffinLimVocoder(tokenizer, _reference_waves(args, prompt_wave))
    else:
        if not Path(args.vocoder).exists() and not looks_like_hub_id(args.vocoder):
            raise FileNotFoundError(f"--vocoder {args.vocoder!r}: no such folder, not a Hub id, not 'griffin-lim'")
        vocoder = UnitVocoder.from_pretrained(args.vocoder, device=device)
    if tokenizer is not None and tokenizer.n_units != vocoder.n_units:
        raise ValueError(f"the tokenizer has {tokenizer.n_units} units but the vocoder {vocoder.n_units}")
    model = AutoModelForCausalLM.from_pretrained(args.model).to(device).eval()
    units, eos = generate_units(model, prompt, vocoder.n_units, args.max_new_units, args.temperature, args.top_k,
                                args.seed)
    spoken = units if args.continuation_only else np.concatenate([prompt, units])
    if spoken.size == 0:
        raise ValueError("nothing to write: the model said EOS at once and there is no prompt")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, vocoder(spoken), vocoder.sample_rate, subtype="PCM_16")
    out.with_suffix(".units.txt").write_text(
        f"prompt: {' '.join(map(str, prompt))}\ncontinuation: {' '.join(map(str, units))}\n")
    print(f"wrote {out}: {len(prompt)} prompt + {len(units)} new units"
          f"{' (stopped at EOS)' if eos else ' (max-new-units reached)'}, {vocoder.sample_rate} Hz")
    return 0
