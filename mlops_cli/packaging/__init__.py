"""Building the Lambda zip: runtime code + model (+ dependencies in the sklearn flavor)."""
