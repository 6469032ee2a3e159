"""``glassformer serve``: a saved model behind an HTTP API that batches concurrent requests.

:mod:`~glassformer.serve.batcher` gathers requests into batches, :mod:`~glassformer.serve.endpoints`
reads each family's bodies and answers as the CLI's ``--json`` does, :mod:`~glassformer.serve.app` is
the Starlette app (limits, errors, streaming, ``/health``, ``/openapi.json``) run by uvicorn, and
:mod:`~glassformer.serve.settings` holds the flags. Nothing is imported here, so the CLI starts without the web stack.
"""
