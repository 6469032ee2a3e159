"""What every tab shares: cleaning user text, friendly error messages, and HTML that works offline.

Nothing here computes a model: the tabs call the library, and these helpers turn inputs into
something safe to pass on and outputs into HTML a browser shows without a network.
"""

from __future__ import annotations

import base64
import copy
import functools
import html
import logging
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
from matplotlib.figure import Figure

from glassformer.viz import figure_png

log = logging.getLogger("glassformer.studio")

# One forward pass at a time: torch already uses every core for one request, and interleaving
# requests on 2 cores only makes each of them slower.
model_lock = threading.Lock()

# The sentiment model reads 64 tokens; a few thousand characters hold far more than that, so longer
# texts are cut before tokenising instead of spending time on pieces the model never sees.
MAX_CHARS = 2000
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class UserInputError(ValueError):
    """An input the studio cannot use, with a message meant for the person who typed it."""


@dataclass
class CleanText:
    """User text made safe to tokenise, and the notes that say what was changed."""

    text: str
    notes: list[str] = field(default_factory=list)


def clean_text(text: object, max_chars: int = MAX_CHARS, what: str = "a sentence") -> CleanText:
    """Control characters become spaces, the text is cut to `max_chars`; empty text is a UserInputError."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise UserInputError(f"expected text, got {type(text).__name__}")
    notes = []
    # Category C covers control, format and unassigned code points; newlines and tabs are kept as spaces.
    cleaned = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    if cleaned != text:
        notes.append("Control characters were replaced by spaces.")
    if len(cleaned) > max_chars:
        notes.append(f"Your text has {len(cleaned):,} characters; only the first {max_chars:,} were read.")
        cleaned = cleaned[:max_chars]
    if not cleaned.strip():
        raise UserInputError(f"The text is empty: type {what} first.")
    return CleanText(cleaned, notes)


def message_html(text: str, kind: str = "info") -> str:
    """A short boxed message (kind: info, warning or error) for an HTML output."""
    colours = {"info": "#e8f1fb", "warning": "#fff4e0", "error": "#fde8e8"}
    return (f'<div class="gf-message gf-{kind}" style="background:{colours.get(kind, colours["info"])};'
            f'padding:8px 12px;border-radius:6px;margin:4px 0">{html.escape(text)}</div>')


def notes_html(notes: list[str]) -> str:
    """The notes about an input, as warning boxes (empty string when there are none)."""
    return "".join(message_html(note, "warning") for note in notes)


def friendly_error(exc: BaseException) -> str:
    """The message shown for a failed request: the user's mistake as is, anything else logged and summarised."""
    if isinstance(exc, UserInputError):
        return str(exc)
    log.exception("studio request failed")
    return f"Something went wrong: {type(exc).__name__}: {exc}. The studio is still running; try another input."


def error_html(exc: BaseException) -> str:
    """A failed request as a message box: a warning for the user's input, an error for anything else."""
    return message_html(friendly_error(exc), "warning" if isinstance(exc, UserInputError) else "error")


# Where a handler's outputs put the message of a failed request (see :func:`shows_errors`).
ERROR = object()
Handler = TypeVar("Handler", bound=Callable[..., Any])


def shows_errors(*outputs: Any) -> Callable[[Handler], Handler]:
    """A handler that answers a failed request with :func:`error_html` instead of raising.

    Without `outputs` the handler returns one HTML string and a failure returns the message; with them,
    a failure returns `outputs` with the message in the place marked :data:`ERROR` (the other values are
    the blanks shown in the handler's other outputs). A bad input never shows a stack trace and never
    stops the app.
    """
    if outputs and sum(value is ERROR for value in outputs) != 1:
        raise ValueError(f"outputs must mark exactly one place with ERROR, got {outputs!r}")

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def answer(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except Exception as exc:
                message = error_html(exc)
                if not outputs:
                    return message
                # Copies: Gradio may change an update dict it is handed.
                return tuple(message if value is ERROR else copy.copy(value) for value in outputs)

        return answer  # type: ignore[return-value]

    return decorate


def truncation_note(truncated: bool, max_length: int) -> list[str]:
    """The note for a text the model read only the start of (empty when it read all of it)."""
    if not truncated:
        return []
    return [f"The model reads at most {max_length} tokens ([CLS] and [SEP] included); "
            f"the rest of your text was cut off."]


def prompt_inputs(generator: Any, text: str) -> Any:
    """What the language model reads for `text`, as its generator prepares it (``<|endoftext|>`` first for a
    model glassformer trained; the last ``max_position`` tokens)."""
    inputs = generator.prepare([text])
    if len(inputs.ids[0]) == len(generator.start_ids):
        raise UserInputError("The model's vocabulary has none of the prompt's characters; try plain English.")
    return inputs


@lru_cache(maxsize=1)
def fashion_test_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Fashion-MNIST's test images, their labels and the class names (loaded once)."""
    from glassformer.data.corpora import load_fashion_mnist

    data = load_fashion_mnist(quiet=True)
    return data.test_images, data.test_labels, data.class_names


def uploaded_image(path: str | Path, size: int) -> np.ndarray:
    """An uploaded PNG/JPEG as the picture shown (`size` pixels square); too large or not an image: UserInputError."""
    from glassformer.tasks.vit import load_image

    upload = Path(path)
    if upload.stat().st_size > MAX_UPLOAD_BYTES:
        raise UserInputError(f"The file is {upload.stat().st_size / 2**20:.1f} MiB; images up to "
                             f"{MAX_UPLOAD_BYTES // 2**20} MiB are accepted.")
    try:
        return load_image(upload, size)
    except ValueError:
        raise UserInputError("That file is not a PNG or JPEG image. Upload a picture of a piece of clothing, "
                             "or pick a test image by number.") from None


def figure_img(fig: Figure, alt: str, dpi: int = 90) -> str:
    """A matplotlib figure as an inline ``<img>`` (a data: URL, so nothing is fetched)."""
    data = base64.b64encode(figure_png(fig, dpi=dpi)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def iframe_html(page: str, height: int = 520, title: str = "view") -> str:
    """A self-contained HTML page (with its own scripts) shown inside the app through a sandboxed iframe."""
    return (f'<iframe title="{html.escape(title)}" class="gf-frame" sandbox="allow-scripts" '
            f'style="width:100%;height:{height}px;border:1px solid #ddd;border-radius:6px" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>')


def table_html(rows: list[list[object]], header: list[str] | None = None, caption: str = "") -> str:
    """A small HTML table; floats shown with 3 decimals."""
    def cell(value: object) -> str:
        return html.escape(f"{value:.3f}" if isinstance(value, float) else str(value))

    parts = ['<table class="gf-table" style="border-collapse:collapse;font-size:12px;margin:4px 0">']
    if caption:
        parts.append(f'<caption style="text-align:left;font-size:12px">{html.escape(caption)}</caption>')
    if header:
        parts.append("<tr>" + "".join(f'<th style="border:1px solid #ccc;padding:2px 6px">{cell(h)}</th>'
                                      for h in header) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f'<td style="border:1px solid #ddd;padding:2px 6px">{cell(v)}</td>'
                                      for v in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def png_img(data: bytes, alt: str, width: int, height: int | None = None) -> str:
    """PNG bytes as an inline ``<img>`` scaled with sharp pixels (a data: URL, so nothing is fetched)."""
    encoded = base64.b64encode(data).decode("ascii")
    size = f'width="{width}"' + (f' height="{height}"' if height is not None else "")
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" {size} '
            f'style="image-rendering:pixelated;border:1px solid #ccc">')


def overlay_html(picture: bytes, heat: np.ndarray, size: int, caption: str) -> str:
    """An image with a grid of patch weights laid over it (orange, opacity by weight), and a caption.

    Each cell's tooltip holds its value, so the map can be read exactly as well as seen.
    """
    heat = np.asarray(heat, dtype=np.float64)
    rows, cols = heat.shape
    peak = float(heat.max()) if heat.size and heat.max() > 0 else 1.0
    cells = "".join(f'<span title="patch {i},{j}: {heat[i, j]:.4f}" style="background:rgba(255,140,0,'
                    f'{0.55 * heat[i, j] / peak:.3f})"></span>' for i in range(rows) for j in range(cols))
    return (f'<figure class="gf-overlay" style="display:inline-block;margin:4px 8px 4px 0;text-align:center">'
            f'<div style="position:relative;width:{size}px;height:{size}px">{png_img(picture, caption, size, size)}'
            f'<div style="position:absolute;inset:0;display:grid;grid-template-columns:repeat({cols},1fr);'
            f'grid-template-rows:repeat({rows},1fr)">{cells}</div></div>'
            f'<figcaption style="font-size:11px">{html.escape(caption)}</figcaption></figure>')
