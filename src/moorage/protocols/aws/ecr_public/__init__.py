"""Amazon ECR Public's API (``ecr-public``, target prefix ``SpencerFrontendService``): its
operations (``operations.py``) and the table of its errors (``errors.py``)."""
