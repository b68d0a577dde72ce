"""culturegan studio: a local web page and API over the Stylizer (``culturegan studio``).

Needs the optional ``[studio]`` extra (FastAPI, Uvicorn, Jinja2, python-multipart); importing
this package does not, so the core package and CLI work without it.
"""
