"""The Topic StoryCloze metric module folder (load it with `evaluate.load(hf_slm.evaluation.metrics_path("topic_storycloze"))`)."""
