"""AWS Secrets Manager's API (``secretsmanager``): its operations (``operations.py``) and the
table of its errors (``errors.py``)."""
