"""The lens: see why a model decided — attribution and its faithfulness, activation caches, the logit lens,
ablation, patching, direct logit attribution and head detectors.

Everything here runs on the hook points every glassformer model has (:mod:`glassformer.nn.hooks`). It sits
above ``models``/``nn`` and below the CLI and the studio, which only call it.
"""

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
from glassformer.lens.explain import COMPARED, Explanation, PositionError, compare, explain
from glassformer.lens.faithfulness import PerturbationCurve, aopc, deletion_curve, insertion_curve, perturbation_curve

# cache, logit lens, interventions
from glassformer.lens.heads import (
    HEAD_KINDS,
    detection_pattern,
    find_heads,
    head_scores,
    induction_scores,
    previous_token_scores,
    repeated_tokens,
)
from glassformer.lens.interventions import (
    DirectLogitAttribution,
    Head,
    ablated,
    direct_logit_attribution,
    logit_difference,
    patch_heads,
    patch_residual,
    resolve_heads,
)
from glassformer.lens.logit_lens import LogitLens, LogitLensReport, layer_logits, logit_lens, logit_lens_report
from glassformer.lens.run import ActivationCache, resid_names, run_with_cache, run_with_hooks, stacks

__all__ = [
    # attribution
    "METHODS",
    "Attribution",
    "COMPARED",
    "Explanation",
    "ImageClassification",
    "NextToken",
    "PerturbationCurve",
    "PositionError",
    "Prediction",
    "TextClassification",
    "TranslationStep",
    "aopc",
    "attention",
    "attention_rollout",
    "attribute",
    "compare",
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
    # cache, logit lens, interventions
    "HEAD_KINDS",
    "ActivationCache",
    "DirectLogitAttribution",
    "Head",
    "LogitLens",
    "LogitLensReport",
    "ablated",
    "detection_pattern",
    "direct_logit_attribution",
    "find_heads",
    "head_scores",
    "induction_scores",
    "layer_logits",
    "logit_difference",
    "logit_lens",
    "logit_lens_report",
    "patch_heads",
    "patch_residual",
    "previous_token_scores",
    "repeated_tokens",
    "resid_names",
    "resolve_heads",
    "run_with_cache",
    "run_with_hooks",
    "stacks",
]
