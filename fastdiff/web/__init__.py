"""The browser edition: the page that generates on a student's own device (this folder's HTML and JS
modules), the export that makes it a static site (site.py) and a local server for it (serve.py)."""
