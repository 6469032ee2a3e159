"""The positional-encoding heatmap: the sinusoidal table PE(pos, dim) drawn as position × dimension."""

from __future__ import annotations

from matplotlib.figure import Figure

from glassformer.nn import sinusoidal_table


def positional_encoding_figure(length: int = 64, d_model: int = 128) -> Figure:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same), drawn for ``length`` positions × ``d_model`` dims.

    Low dimensions oscillate fast along the positions, high ones slowly, so every row (position)
    gets a different pattern: that is how the model can tell positions apart.
    """
    if length < 1 or d_model < 1:
        raise ValueError(f"length and d_model must be positive, got length={length}, d_model={d_model}")
    table = sinusoidal_table(length, d_model).numpy()  # (length, d_model)
    fig = Figure(figsize=(min(14.0, 3.0 + d_model * 0.04), min(12.0, 2.5 + length * 0.05)))
    ax = fig.add_subplot()
    image = ax.imshow(table, cmap="RdBu", vmin=-1.0, vmax=1.0, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="PE value")
    ax.set_xlabel("dimension")
    ax.set_ylabel("position")
    ax.set_title(f"Sinusoidal positional encoding ({length} positions × {d_model} dimensions)", fontsize=10)
    fig.tight_layout()
    return fig
