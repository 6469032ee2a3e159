"""Real data sets: named sources fetched into a cache, user data, splits and batching."""

from typing import Any

from glassformer.data import corpora  # noqa: F401  (importing it registers de-en, fashion-mnist, shakespeare)
from glassformer.data.sources import SOURCES, SourceError, cache_dir, fetch, get_source, is_fetched, register
from glassformer.data.text import TextDataset, TextSplit, describe, load_movie_reviews, load_text

__all__ = ["SOURCES", "BucketBatchSampler", "PaddingCollator", "SourceError", "TextDataset", "TextSplit",
           "cache_dir", "describe", "fetch", "get_source", "is_fetched", "load_movie_reviews", "load_text",
           "pad_sequences", "register"]

_BATCHING = ("BucketBatchSampler", "PaddingCollator", "pad_sequences")


def __getattr__(name: str) -> Any:
    # Batching needs torch; importing it only on use keeps `glassformer data list` quick.
    if name in _BATCHING:
        from glassformer.data import batching

        return getattr(batching, name)
    raise AttributeError(f"module 'glassformer.data' has no attribute {name!r}")
