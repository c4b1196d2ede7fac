"""MLflow's wire protocol: JSON shapes of entities and request decoding rules."""
