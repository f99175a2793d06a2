"""Package detectors, one module per package manager or ecosystem (dpkg, apk, rpm, Python, npm,
Go, Java), plus ``os_release`` for the operating system. Each module exposes ``DETECTOR``, a
:class:`moorage.scanning.inventory.Detector`: it names the paths whose contents it needs and
turns an image's final filesystem (:class:`moorage.scanning.files.ImageFiles`) into packages,
the paths they own, and issues; :func:`moorage.scanning.inventory.inventory` runs them all."""
