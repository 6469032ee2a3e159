"""The lens: see why a model decided — attribution, faithfulness, and (by its other modules) the activation cache,
the logit lens, ablation and patching. Sits above ``models``/``nn``, below the CLI and the studio."""

# attribution
from glassformer.lens.attribution import (
    METHODS,
    Attribution,
    ImageClassification,
    NextToken,
    Prediction,
    TextClassification,
    TranslationStep,
    attention,
    attention_rollout,
    attribute,
    grad_input,
    integrated_gradients,
    integration_points,
    occlusion,
    pad_baseline,
    prediction_for,
    rollout,
)
from glassformer.lens.explain import Explanation, explain
from glassformer.lens.faithfulness import PerturbationCurve, aopc, deletion_curve, insertion_curve, perturbation_curve

__all__ = [
    # attribution
    "METHODS",
    "Attribution",
    "Explanation",
    "ImageClassification",
    "NextToken",
    "PerturbationCurve",
    "Prediction",
    "TextClassification",
    "TranslationStep",
    "aopc",
    "attention",
    "attention_rollout",
    "attribute",
    "deletion_curve",
    "explain",
    "grad_input",
    "insertion_curve",
    "integrated_gradients",
    "integration_points",
    "occlusion",
    "pad_baseline",
    "perturbation_curve",
    "prediction_for",
    "rollout",
]
