"""glassformer: a transformer toolkit written from scratch that people can see through."""

from glassformer._version import __version__

__all__ = ["__version__", "from_pretrained", "pipeline", "save_pretrained"]


def __getattr__(name: str):
    # Lazy: `import glassformer` stays light; torch and the checkpoint code load on first use.
    if name in ("from_pretrained", "save_pretrained", "export"):
        from glassformer import pretrained

        return getattr(pretrained, name)
    if name == "pipeline":
        from glassformer.tasks.pipeline import pipeline

        return pipeline
    raise AttributeError(f"module 'glassformer' has no attribute {name!r}")
