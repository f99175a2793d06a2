"""Use cases. Services depend on ports and the domain, never on adapters or HTTP."""
