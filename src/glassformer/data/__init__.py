"""Real data sets: named sources fetched into a cache, user data, splits and batching."""

from glassformer.data.sources import SOURCES, SourceError, cache_dir, fetch, get_source, is_fetched

__all__ = ["SOURCES", "SourceError", "cache_dir", "fetch", "get_source", "is_fetched"]
