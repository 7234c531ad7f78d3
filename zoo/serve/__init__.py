"""`zoo serve`: the web page and its API (``zoo.serve.app.create_app``). Imports no Lightning."""
