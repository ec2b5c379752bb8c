"""hf_slm: train speech language models and study their scaling laws with Hugging Face tools."""

__version__ = "0.1.0"
