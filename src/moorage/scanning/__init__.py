"""Vulnerability scanning: inventory (layers -> files -> packages), advisories (imported
vulnerability data) and the matcher. ``files.py`` is the seam between reading layers and
detecting packages."""
