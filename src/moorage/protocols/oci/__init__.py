"""The OCI Distribution API (``/v2/``), spec v1.1."""
