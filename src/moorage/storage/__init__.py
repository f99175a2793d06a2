"""Storage adapters: the implementations of the ports in ``moorage.ports``."""
