"""Every model family traces whole with torch.export (no value-dependent Python in any forward).

Reference: the eager model itself on new inputs of another batch size and length, through the
exported program with dynamic batch and sequence axes; outputs must agree to float rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from glassformer.models import (
    DecoderLM,
    DecoderLMConfig,
    EncoderClassifier,
    EncoderConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    VisionTransformer,
    ViTConfig,
)

BATCH, LENGTH = Dim("batch", min=1, max=64), Dim("length", min=2, max=60)


def _mask(batch: int, length: int, short: int) -> torch.Tensor:
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, short:] = 0  # the first row is padded
    return mask


def test_encoder_classifier_exports_with_dynamic_batch_and_length():
    torch.manual_seed(0)
    model = EncoderClassifier(EncoderConfig.preset("tiny")).eval()
    ids, mask = torch.randint(1, 1000, (2, 7)), _mask(2, 7, 5)
    program = torch.export.export(model, (ids, mask), dynamic_shapes={"input_ids": {0: BATCH, 1: LENGTH},
                                                                      "attention_mask": {0: BATCH, 1: LENGTH}})
    ids, mask = torch.randint(1, 1000, (3, 11)), _mask(3, 11, 4)
    torch.testing.assert_close(program.module()(ids, mask).logits, model(ids, mask).logits, rtol=1e-5, atol=1e-6)


def test_decoder_lm_exports_with_dynamic_batch_and_length():
    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig.preset("tiny")).eval()
    program = torch.export.export(model, (torch.randint(0, 256, (2, 7)),),
                                  dynamic_shapes={"input_ids": {0: BATCH, 1: LENGTH}})
    ids = torch.randint(0, 256, (3, 13))
    torch.testing.assert_close(program.module()(ids).logits, model(ids).logits, rtol=1e-5, atol=1e-6)


def test_seq2seq_exports_with_dynamic_lengths_and_padding():
    torch.manual_seed(0)
    model = Seq2SeqTransformer(Seq2SeqConfig.preset("tiny")).eval()
    src, tgt = torch.randint(3, 128, (2, 7)), torch.randint(3, 128, (2, 5))
    source, target = Dim("source", min=2, max=60), Dim("target", min=2, max=60)
    program = torch.export.export(model, (src, tgt, _mask(2, 7, 4)),
                                  dynamic_shapes={"src_ids": {0: BATCH, 1: source}, "tgt_ids": {0: BATCH, 1: target},
                                                  "src_attention_mask": {0: BATCH, 1: source}})
    src, tgt, mask = torch.randint(3, 128, (3, 9)), torch.randint(3, 128, (3, 6)), _mask(3, 9, 3)
    torch.testing.assert_close(program.module()(src, tgt, mask).logits, model(src, tgt, mask).logits,
                               rtol=1e-5, atol=1e-6)


def test_vit_exports_with_dynamic_batch():
    torch.manual_seed(0)
    model = VisionTransformer(ViTConfig.preset("tiny")).eval()
    program = torch.export.export(model, (torch.randn(2, 1, 8, 8),), dynamic_shapes={"images": {0: BATCH}})
    images = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(program.module()(images).logits, model(images).logits, rtol=1e-5, atol=1e-6)


def test_out_of_range_ids_still_get_a_clear_error_in_eager_mode():
    model = DecoderLM(DecoderLMConfig.preset("tiny")).eval()
    with pytest.raises(ValueError, match="token id 256 is out of range for a vocabulary of size 256"):
        model(torch.tensor([[1, 256]]))
