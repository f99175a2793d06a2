"""Amazon ECR's control-plane API (``AmazonEC2ContainerRegistry_V20150921``): its operations
(``operations/``) and the table of its errors (``errors.py``)."""
