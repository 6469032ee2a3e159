"""Inference: generation and task pipelines."""
