"""Contracts (``typing.Protocol``) between services and storage adapters."""
