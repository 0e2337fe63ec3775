"""The Gradio app: the page (ui.py), its adapter (backend.py) and one module per tab's work."""
