"""Whole models composed from glassformer.nn, each with a dataclass config and named presets."""

from glassformer.models.decoder_lm import DECODER_LM_PRESETS, DecoderLM, DecoderLMConfig
from glassformer.models.encoder import (
    ENCODER_PRESETS,
    EncoderClassifier,
    EncoderConfig,
    EncoderEmbeddings,
    TransformerEncoderModel,
    mean_pool,
)
from glassformer.models.markov import Evaluation, MarkovChain
from glassformer.models.outputs import ClassifierOutput, DecoderOutput, EncoderOutput, LMOutput, Seq2SeqOutput
from glassformer.models.seq2seq import SEQ2SEQ_PRESETS, Seq2SeqConfig, Seq2SeqTransformer, shift_right
from glassformer.models.vit import VIT_PRESETS, VisionTransformer, ViTConfig

__all__ = [
    "DECODER_LM_PRESETS",
    "ENCODER_PRESETS",
    "SEQ2SEQ_PRESETS",
    "VIT_PRESETS",
    "ClassifierOutput",
    "DecoderLM",
    "DecoderLMConfig",
    "DecoderOutput",
    "EncoderClassifier",
    "EncoderConfig",
    "EncoderEmbeddings",
    "EncoderOutput",
    "Evaluation",
    "LMOutput",
    "MarkovChain",
    "Seq2SeqConfig",
    "Seq2SeqOutput",
    "Seq2SeqTransformer",
    "TransformerEncoderModel",
    "ViTConfig",
    "VisionTransformer",
    "mean_pool",
    "shift_right",
]
