"""Int8 dynamic quantisation of Linear layers for CPU inference.

y = x Wᵀ + b with both factors in int8:

- weights, once: q_W = round(W / s_W), one symmetric scale s_W = max|W_row| / 127 per output row;
- inputs, on every call (the "dynamic" part): each token row x is mapped onto all 256 int8 levels,
  x ≈ s_x (q_x − z_x) with s_x = (max x − min x) / 255 and zero point z_x. The asymmetric range
  matters: after GELU the inputs of the second feed-forward layer are almost all positive, and a
  symmetric range would waste half the levels (measured on MiniLM: sentence-vector cosine to fp32
  0.984 symmetric, 0.992 asymmetric; torch's ``quantize_dynamic`` gives 0.82);
- y = s_x s_W (q_x q_Wᵀ − z_x Σ_k q_W[:, k]) + b, with the int8 × int8 → int32 product on
  ``torch._int_mm`` and the zero-point term from the precomputed row sums of q_W.

PyTorch's own ``torch.ao.quantization.quantize_dynamic`` still exists in torch 2.13 but is
deprecated (it warns that it will be removed, and so do the quantized tensor types it builds),
so glassformer carries this small module instead: plain int8 tensors and one aten matmul.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glassformer._cpu import cpu_has_int8_dot as int8_dot


def quantize_rows(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each row of ``x`` ``(N, K)`` on all 256 int8 levels: ``(q_x int8 (N, K), s_x (N, 1), z_x (N, 1))``, x ≈ s_x (q_x − z_x)."""
    low, high = torch.aminmax(x, dim=1, keepdim=True)  # (N, 1) each
    low.clamp_(max=0.0)  # the range always holds 0
    high.clamp_(min=0.0)
    levels = 255.0 / (high - low).clamp_min_(1e-30)  # 1 / s_x
    shift = low.mul_(-levels)  # -min / s_x, so x / s_x + shift lies in [0, 255]
    # Adding 0.5 and truncating to uint8 rounds to nearest (all values are >= 0 here); flipping the
    # top bit then reads the byte as an int8 value 128 lower, the signed range _int_mm wants.
    q_x = torch.addcmul(shift + 0.5, x, levels).to(torch.uint8).bitwise_xor_(128).view(torch.int8)
    return q_x, levels.reciprocal_(), shift.sub_(128.0)


class SharedInput:
    """Remembers the last input a group of Int8Linear layers quantised, so q, k and v quantise it once.

    A hit needs the very same tensor object (held here, so its memory cannot be reused meanwhile),
    and the entry is dropped once every layer of the group has read it.
    """

    def __init__(self, group_size: int) -> None:
        self.group_size = group_size
        self.source: Tensor | None = None
        self.value: tuple[Tensor, Tensor, Tensor] | None = None
        self.reads_left = 0

    def quantize(self, x: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``quantize_rows(x2)`` for ``x``, computed once per group."""
        if self.source is x and self.value is not None:
            value = self.value
            self.reads_left -= 1
            if self.reads_left == 0:
                self.source, self.value = None, None
            return value
        value = quantize_rows(x2)
        self.source, self.value, self.reads_left = x, value, self.group_size - 1
        return value


class Int8Linear(nn.Module):
    """Dynamically quantised linear map: y ≈ s_x s_W (q_x q_Wᵀ − z_x Σq_W) + b, int8 weights per row, int8 inputs per token."""

    def __init__(self, weight: Tensor, bias: Tensor | None, shared: SharedInput | None = None) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.shared = shared
        weight = weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(torch.finfo(torch.float32).tiny)
        q_weight = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        # Stored transposed and contiguous: (in, out) is the layout the int8 matmul reads fastest.
        self.register_buffer("q_weight_t", q_weight.t().contiguous())
        self.register_buffer("weight_scale", scale)
        # Rows of the rank-2 update added after the matmul: s_W Σ_k q_W[:, k] (times -s_x z_x) and b (times 1).
        sums = q_weight.sum(dim=1, dtype=torch.int32).float() * scale
        self.register_buffer("correction", torch.stack([sums, torch.zeros_like(sums) if bias is None
                                                        else bias.detach().float()]))

    @classmethod
    def from_linear(cls, linear: nn.Linear, shared: SharedInput | None = None) -> "Int8Linear":
        """The quantised copy of a float ``nn.Linear``."""
        return cls(linear.weight, linear.bias, shared)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` float → ``(..., out_features)`` float."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected inputs with {self.in_features} features, got {x.shape[-1]}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).float()  # (N, in)
        q_x, x_scale, zero = self.shared.quantize(x, x2) if self.shared is not None else quantize_rows(x2)
        if not int8_dot():
            # No integer dot-product instructions: the same integer products, summed in fp32 (exact while a
            # row's sum stays below 2^24, which |q| <= 127 · 128 keeps for up to 1,032 features and nearly
            # always beyond), at fp32 matmul speed instead of the slow int32 path.
            acc = q_x.float() @ self.q_weight_t.float()
        elif q_x.shape[0] <= 16:
            # torch._int_mm needs more than 16 rows; pad the few-token case (decoding, tiny batches).
            q_x = torch.cat([q_x, q_x.new_zeros(17 - q_x.shape[0], self.in_features)])
            acc = torch._int_mm(q_x, self.q_weight_t)[: x2.shape[0]]  # (N, out) int32
        else:
            acc = torch._int_mm(q_x, self.q_weight_t)  # (N, out) int32
        # One conversion pass then in-place scaling: an int32 × float multiply would take a slower mixed-type path.
        out = acc.float().mul_(self.weight_scale).mul_(x_scale)  # s_x s_W (q_x q_Wᵀ)
        # y = s_x s_W (q_x q_Wᵀ − z_x Σ q_W) + b, the last two terms as one rank-2 update in place.
        rank2 = torch.cat([-(zero * x_scale), torch.ones_like(zero)], dim=1)  # (N, 2)
        out.addmm_(rank2, self.correction)
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_int8(model: nn.Module, skip: tuple[str, ...] = ()) -> nn.Module:
    """Replace every ``nn.Linear`` in ``model`` (in place) by an :class:`Int8Linear`; returns the model.

    Names listed in ``skip`` (module paths such as ``"lm_head"``) stay in float, as do Linear
    layers whose weight is shared with another module (tied embeddings), which must keep one
    float tensor for both uses. The query, key and value projections of each attention layer
    share one :class:`SharedInput`, so self-attention quantises its input once, not three times.
    """
    from glassformer.nn.attention import MultiHeadAttention

    shared = _shared_weights(model)
    groups: dict[int, SharedInput] = {}
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            group = SharedInput(3)
            for proj in (module.q_proj, module.k_proj, module.v_proj):
                groups[id(proj)] = group
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            path = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and path not in skip and id(child.weight) not in shared:
                setattr(module, child_name, Int8Linear.from_linear(child, groups.get(id(child))))
    return model


def _shared_weights(model: nn.Module) -> set[int]:
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    return {key for key, count in seen.items() if count > 1}
