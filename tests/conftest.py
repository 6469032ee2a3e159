"""Suite-wide settings: Hypothesis draws the same examples on every run, so a failure is reproducible and a pass
is not luck (set HYPOTHESIS_PROFILE=explore to draw fresh ones)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("glassformer", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "glassformer"))
