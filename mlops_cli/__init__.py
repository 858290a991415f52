"""iris-mlops: an Iris classifier from training to an HTTPS endpoint, in one CLI."""

__version__ = "0.1.0"
