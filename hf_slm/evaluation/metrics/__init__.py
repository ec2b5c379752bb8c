"""`evaluate` metric modules, one folder per benchmark (pass `hf_slm.evaluation.metrics_path(name)` to `evaluate.load`)."""
