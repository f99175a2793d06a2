"""The web pages: the public gallery (``gallery.py``), server-rendered with Jinja2 from
``templates/``, one stylesheet and a little progressive-enhancement JavaScript in
``static/``."""
