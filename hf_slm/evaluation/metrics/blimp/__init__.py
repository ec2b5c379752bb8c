"""The BLiMP metric module folder (load it with `evaluate.load(hf_slm.evaluation.metrics_path("blimp"))`)."""
