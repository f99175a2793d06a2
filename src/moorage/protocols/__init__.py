"""Wire protocols: the only packages that import the web framework."""
