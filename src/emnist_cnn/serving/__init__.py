"""Serving: the REST API and the web page with a drawing canvas (app.py, web/), thin layers over Recognizer."""
