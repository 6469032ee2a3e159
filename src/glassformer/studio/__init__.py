"""glassformer studio: a Gradio app that shows every model's inside (`glassformer studio`, `make demo`).

The app calls the library's public APIs only; importing this package imports Gradio.
"""

from glassformer.studio.app import build_app, ensure_sentiment_model, launch, serve
from glassformer.studio.models import StudioModels, default_models
from glassformer.studio.walkthrough import (
    WalkthroughSteps,
    lm_walkthrough_html,
    translation_walkthrough_html,
    vision_walkthrough_html,
    walkthrough,
    walkthrough_html,
)

__all__ = ["StudioModels", "WalkthroughSteps", "build_app", "default_models", "ensure_sentiment_model", "launch",
           "lm_walkthrough_html", "serve", "translation_walkthrough_html", "vision_walkthrough_html", "walkthrough",
           "walkthrough_html"]
