"""Checkpoints in and out of glassformer: Hugging Face (BERT family, GPT-2, ViT), sentence-transformers, ONNX; int8."""

from glassformer.nn.quantize import Int8Linear, quantize_int8
from glassformer.pretrained.api import FAMILIES, Pretrained, from_pretrained, load_model
from glassformer.pretrained.export import FORMATS, Exported, export
from glassformer.pretrained.hub import KNOWN, resolve
from glassformer.pretrained.loading import CheckpointError, read_config, read_state_dict
from glassformer.pretrained.save import save_pretrained
from glassformer.pretrained.sentence import SentenceConfig, SentenceEncoder, pool

__all__ = [
    "FAMILIES", "FORMATS", "KNOWN", "CheckpointError", "Exported", "Int8Linear", "Pretrained", "SentenceConfig",
    "SentenceEncoder", "export", "from_pretrained", "load_model", "pool", "quantize_int8", "read_config",
    "read_state_dict", "resolve", "save_pretrained",
]
