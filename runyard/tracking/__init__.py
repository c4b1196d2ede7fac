"""The tracking API: ``Client``/``MlflowClient`` and the fluent functions."""

from runyard.tracking.client import Client, MlflowClient
from runyard.tracking.uri import get_tracking_uri, is_tracking_uri_set, set_tracking_uri

__all__ = ["Client", "MlflowClient", "get_tracking_uri", "is_tracking_uri_set", "set_tracking_uri"]
