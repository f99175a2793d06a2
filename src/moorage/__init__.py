"""moorage: a self-hosted container image registry that behaves like Amazon ECR."""

__version__ = "0.1.0"
