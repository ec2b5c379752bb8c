#!/usr/bin/env bash
# Every GPU figure the issues ask for, in one run on one H100 / H200 (about 15 minutes):
# the GPU tests, HuBERT encoding end to end vs. the raw forward, training MFU of the five sizes vs. plain HF,
# sBLIMP-dev + sSC + tSC evaluation of an 85M model vs. a bare forward,
# TTS audio-seconds per second per backend (published sizes, random weights: no Hub here) and GPU-hours for 72k h.
#   bash bench/gpu.sh [OUT_DIR]        (figures also written to OUT_DIR/*.txt)
set -uo pipefail
out=${1:-bench-gpu}
mkdir -p "$out"
python - <<'PY' | tee "$out/device.txt"
import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
PY
python -m pytest -q -m gpu tests 2>&1 | tail -5 | tee "$out/gpu_tests.txt"
python bench/bench_encode.py --hubert --clips 256 --seconds 20 --batch 32 2>&1 | grep -v "utt/s" | tee "$out/encode.txt"
python bench/bench_encode.py --hubert --clips 256 --seconds 20 --batch 32 --precision bf16 --agreement 2>&1 \
  | grep -v "utt/s" | tee "$out/encode_bf16.txt"
python bench/bench_train.py --sizes 20M 85M 155M 309M 823M 2>&1 | tee "$out/train.txt"
python bench/bench_eval.py --size 85M 2>&1 | grep -v "it/s" | tee "$out/eval.txt"
python bench/bench_tts.py --backends espeak hibari fastspeech2 vits bark --random-weights --stories 64 \
    --batch-size 32 --device cuda --no-wer 2>&1 | grep -v "it/s" | tee "$out/tts.txt"
