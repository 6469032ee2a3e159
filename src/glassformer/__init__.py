"""glassformer: a transformer toolkit written from scratch that people can see through."""

__version__ = "0.1.0"
