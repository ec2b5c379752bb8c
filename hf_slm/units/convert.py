"""Import k-means models saved by scikit-learn (e.g. the published TWIST/textlesslib ``*_km500.bin``).

Security: those files are pickles, and unpickling runs arbitrary code. :func:`import_sklearn_kmeans` is the
only place in hf_slm that unpickles, and it is meant to be run once, explicitly, on a file you trust; the
result is a SpeechTokenizer folder (JSON + safetensors) that loads without unpickling anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .tokenizer import make_config, write_files


def read_sklearn_centroids(src: str | Path) -> np.ndarray:
    """Centroids [K, D] of a joblib/pickle file holding a fitted sklearn (MiniBatch)KMeans.

    WARNING: unpickles ``src``; only use files you trust.
    """
    import joblib

    try:
        obj = joblib.load(src)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{src}: cannot unpickle a k-means model ({type(e).__name__}: {e})") from e
    centers = getattr(obj, "cluster_centers_", None)
    if centers is None and isinstance(obj, dict):
        centers = obj.get("cluster_centers_")
    if centers is None and isinstance(obj, np.ndarray):
        centers = obj
    if centers is None:
        raise ValueError(f"{src}: holds a {type(obj).__name__}, not a fitted k-means (no cluster_centers_)")
    centers = np.asarray(centers, dtype=np.float32)
    if centers.ndim != 2:
        raise ValueError(f"{src}: cluster centers have shape {centers.shape}, expected [K, D]")
    return centers


def hubert_encoder_config(model_id: str, layer: int = 11, revision: str | None = None) -> dict[str, Any]:
    """Description of a :class:`~hf_slm.units.hubert.HubertEncoder` without loading the model, with the
    release's settings (no normalisation, float32, 30 s chunks)."""
    return {"type": "hubert", "model_id": model_id, "revision": revision, "layer": layer,
            "sample_rate": 16000, "normalize": False, "chunk_seconds": 30.0, "dtype": "float32"}


def import_sklearn_kmeans(
    src: str | Path,
    out_dir: str | Path,
    encoder: dict[str, Any],
    dedup: bool = True,
    frame_rate: float | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Convert a pickled sklearn k-means into a SpeechTokenizer folder at ``out_dir``.

    ``encoder`` is the encoder description (``Encoder.to_dict()`` or :func:`hubert_encoder_config`); the
    encoder itself is not loaded, so the conversion works offline. ``frame_rate``, when given, is checked
    against the encoder when the tokenizer is loaded.
    """
    centroids = read_sklearn_centroids(src)
    out = Path(out_dir)
    write_files(out, make_config(centroids, encoder, dedup, frame_rate, sample_rate), centroids)
    return out
