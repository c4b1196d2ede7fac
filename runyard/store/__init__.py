"""Stores: tracking metadata (SQL, REST) and artifacts."""
