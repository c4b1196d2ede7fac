"""Small helpers shared by several layers (validation, time, names, URIs)."""
