"""Model serving: the scoring server behind ``runyard models serve`` (MLflow's ``/invocations``).

Modules:

- :mod:`runyard.serving.app`: the Starlette app for one loaded model (``/ping``, ``/health``,
  ``/version``, ``/invocations``, ``/metrics``).
- :mod:`runyard.serving.invocations`: content types, payload parsing, prediction and MLflow's
  error bodies, for the app and for ``runyard models predict``; :mod:`runyard.serving.fastpath`
  and :mod:`runyard.serving.batching` make numeric rows cheap and let concurrent requests to
  row-wise models share model calls; :mod:`runyard.serving.metrics` is ``/metrics``.
- :mod:`runyard.serving.server`: ``serve(model_uri, ...)`` runs it with uvicorn, in this
  interpreter or in an environment built for the model.
- :mod:`runyard.serving.predict`: ``runyard models predict``, the same parsing offline.
- ``python -m runyard.serving --model-path DIR ...``: the entry point run inside a model's own
  environment (and in Docker images).

Nothing heavy is imported here: pandas, uvicorn and the model flavors load on first use.
"""

__all__: list[str] = []
