"""A real Hub round trip, offline: ``olah`` serves local git repos as a read-only Hugging Face Hub.

A tiny Llama, a speech tokenizer and a unit dataset are committed to git repos under a mirrors folder;
``olah-cli`` serves them at ``HF_ENDPOINT``; a separate process (the Hub clients read ``HF_ENDPOINT`` at
import) loads them with ``from_pretrained`` / ``load_dataset("owner/name")`` and trains with
``hf-slm train datasets=[owner/name]``. Deselect with ``-m "not hub"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[1]
K = 16
ORG = "hf-slm-test"

CLIENT = r"""
import hashlib, json, sys
import datasets
from transformers import LlamaForCausalLM
from hf_slm.cli import main
from hf_slm.units.tokenizer import SpeechTokenizer

revisions = json.loads(sys.argv[1])
out = {}
model = LlamaForCausalLM.from_pretrained("hf-slm-test/tiny-llama", revision=revisions["model"])
digest = hashlib.sha256()
for name, tensor in sorted(model.state_dict().items()):
    digest.update(name.encode() + tensor.detach().numpy().tobytes())
out["model"] = digest.hexdigest()
tok = SpeechTokenizer.from_pretrained("hf-slm-test/speech-tokenizer", revision=revisions["tokenizer"])
centroids = tok.centroids.detach().cpu().numpy() if hasattr(tok.centroids, "detach") else tok.centroids
out["centroids"] = hashlib.sha256(centroids.astype("float32").tobytes()).hexdigest()
ds = datasets.load_dataset("hf-slm-test/units")
out["splits"] = {name: list(split["id"]) for name, split in ds.items()}
out["train"] = main(["train", "datasets=[hf-slm-test/units]", "n_units=16", "size=demo-xs", "block_size=32",
                     "batch_size=4", "tokens=256", "eval_every=2", "warmup_min=1", "tracker=null",
                     'mixed_precision="no"', "output_dir=run", "--no-progress"])
print("RESULT " + json.dumps(out))
"""


def _commit(folder: Path) -> str:
    git = ["git", "-C", str(folder), "-c", "user.name=hf-slm", "-c", "user.email=hf-slm@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "upload"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_olah(tmp: Path, mirrors: Path) -> tuple[subprocess.Popen, str]:
    cli = shutil.which("olah-cli", path=str(Path(sys.executable).parent)) or shutil.which("olah-cli")
    if cli is None:
        pytest.fail("olah-cli not found: install the dev extras (pip install -e '.[dev]'), which include olah")
    port = _free_port()
    (tmp / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{tmp / "olah-cache"}"\n'
        f'mirrors-path = ["{mirrors}"]\n[accessibility]\noffline = true\n')
    log = open(tmp / "olah.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([cli, "-c", str(tmp / "olah.toml"), "--log-path", str(tmp / "olah-logs")],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _wait(proc: subprocess.Popen, url: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"olah exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"olah did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def _build_repos(mirrors: Path) -> dict:
    """Commit a tiny Llama, a log-mel speech tokenizer and a unit dataset (whose card names the tokenizer at
    its commit) into git repos laid out as olah's mirrors: ``<type>/<org>/<name>``."""
    import datasets
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from hf_slm.data.schema import unit_features
    from hf_slm.data.unit_dataset import UnitDatasetInfo, save_unit_dataset
    from hf_slm.units.logmel import LogMelEncoder
    from hf_slm.units.tokenizer import SpeechTokenizer

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=K + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    model.save_pretrained(mirrors / "models" / ORG / "tiny-llama")
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().numpy().tobytes())
    encoder = LogMelEncoder()
    centroids = np.random.default_rng(0).normal(size=(K, encoder.dim)).astype("float32")
    SpeechTokenizer(encoder, centroids, dedup=False).save_pretrained(mirrors / "models" / ORG / "speech-tokenizer")
    shas = {"model": _commit(mirrors / "models" / ORG / "tiny-llama"),
            "tokenizer": _commit(mirrors / "models" / ORG / "speech-tokenizer")}
    rows = {"id": [f"u{i:02d}" for i in range(24)], "units": [[(i + j) % K for j in range(30)] for i in range(24)],
            "n_frames": [30] * 24, "seconds": [1.2] * 24}
    ds = datasets.Dataset.from_dict(rows, features=unit_features(durations=False))
    info = UnitDatasetInfo(f"{ORG}/speech-tokenizer", shas["tokenizer"], K, 25.0, False)
    info.add(ds)
    save_unit_dataset({"train": ds.select(range(20)), "test": ds.select(range(20, 24))},
                      mirrors / "datasets" / ORG / "units", info)
    shas["dataset"] = _commit(mirrors / "datasets" / ORG / "units")
    return {"shas": shas, "model": digest.hexdigest(), "centroids": hashlib.sha256(centroids.tobytes()).hexdigest(),
            "train_ids": rows["id"][:20], "test_ids": rows["id"][20:]}


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    mirrors = tmp / "mirrors"
    proc, endpoint = _start_olah(tmp, mirrors)  # starts while the repos are written
    try:
        built = _build_repos(mirrors)
        _wait(proc, f"{endpoint}/api/datasets/{ORG}/units/revision/main", tmp / "olah.log")
        work = tmp / "client"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE") and k != "PYTHONPATH"}
        env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp / "hf-home"), HF_HUB_DISABLE_XET="1",
                   HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                   PYTHONPATH=str(ROOT))
        client = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(built["shas"])], cwd=work, env=env,
                                capture_output=True, text=True, timeout=600)
        assert client.returncode == 0, client.stderr[-4000:]
        result = json.loads(next(line for line in client.stdout.splitlines() if line.startswith("RESULT "))[7:])
        record = json.loads((work / "run" / "run.json").read_text())
        yield built, result, record
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_model_and_tokenizer_load_by_id_and_revision(round_trip):
    built, result, _ = round_trip
    assert result["model"] == built["model"]  # the same weights, bit for bit
    assert result["centroids"] == built["centroids"]


def test_unit_dataset_loads_by_id(round_trip):
    built, result, _ = round_trip
    assert result["splits"] == {"train": built["train_ids"], "test": built["test_ids"]}


def test_training_on_a_hub_dataset_records_it(round_trip):
    built, result, record = round_trip
    assert result["train"] == 0 and record["finished"]
    (entry,) = record["datasets"]
    assert entry["id"] == f"{ORG}/units"
    assert (entry["train_tokens"], entry["test_tokens"]) == (20 * 31, 4 * 31)  # every utterance came through, each + EOS
    assert 0 < record["D"] <= 256 and record["loss"] is not None
    assert record["tokenizer"] == {"id": f"{ORG}/speech-tokenizer", "revision": built["shas"]["tokenizer"]}


def test_training_records_the_resolved_dataset_commit(round_trip):
    built, _, record = round_trip
    assert record["datasets"][0]["revision"] == built["shas"]["dataset"]
