"""Pure domain logic: no HTTP, no SQL, no SDKs. Imports nothing else from moorage."""
