"""The studio's tabs, one module each: its ``build(models)`` (the Gradio components and their events) and its handlers.

A handler is a plain function of (models, inputs) → outputs, callable without a browser; it answers
a failed request with a message in its HTML output (:func:`glassformer.studio.common.shows_errors`).
"""
