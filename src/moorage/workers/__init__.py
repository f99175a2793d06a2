"""Background work: the durable job runner (``runner.py``) and how the application starts it
(``wiring.py``)."""
