"""Learning-rate schedules and AdamW parameter groups against Hugging Face transformers' own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassformer.training.schedules import decay_groups, lr_multiplier, make_scheduler


@pytest.fixture(scope="module")
def transformers():
    """Hugging Face transformers, the reference for the schedule and decay-group tests only."""
    return pytest.importorskip("transformers")


@pytest.mark.parametrize("schedule, reference", [
    ("cosine", "get_cosine_schedule_with_warmup"),
    ("linear", "get_linear_schedule_with_warmup"),
])
def test_schedule_matches_transformers(transformers, schedule, reference):
    """Reference: transformers.get_cosine_schedule_with_warmup / get_linear_schedule_with_warmup."""
    warmup, total = 7, 50
    ours = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    theirs = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    ours_s = make_scheduler(ours, schedule, warmup, total)
    theirs_s = getattr(transformers, reference)(theirs, warmup, total)
    for _ in range(total + 1):
        assert ours_s.get_last_lr()[0] == pytest.approx(theirs_s.get_last_lr()[0], abs=1e-12)
        ours.step(), theirs.step(), ours_s.step(), theirs_s.step()


def test_floor_and_constant_and_errors():
    factor = lr_multiplier("cosine", 0, 10, min_ratio=0.1)
    assert factor(0) == 1.0 and factor(10) == pytest.approx(0.1) and factor(5) == pytest.approx(0.55)
    assert lr_multiplier("constant", 4, 10)(2) == 0.5 and lr_multiplier("constant", 4, 10)(9) == 1.0
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        lr_multiplier("step", 0, 10)
    with pytest.raises(ValueError, match="warmup_steps=11, total_steps=10"):
        lr_multiplier("linear", 11, 10)


def test_decay_groups_match_the_bert_recipe(transformers):
    """Reference: Hugging Face's BERT fine-tuning rule: no decay for names with 'bias' or 'LayerNorm.weight'."""
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32)
    model = transformers.BertForSequenceClassification(config)
    groups = decay_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    ours_no_decay = {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    reference = {n for n, _ in model.named_parameters() if "bias" in n or "LayerNorm.weight" in n}
    assert ours_no_decay == reference
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_tied_weights_appear_once():
    embed = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embed.weight
    model = nn.Sequential(embed, head)
    groups = decay_groups(model, 0.1)
    assert sum(len(g["params"]) for g in groups) == 1
    torch.optim.AdamW(groups)  # would raise if a parameter were in two groups
