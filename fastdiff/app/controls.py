"""Page controls shared by the tabs' layouts."""

from __future__ import annotations

import gradio as gr


def free_dropdown(*args, **kwargs) -> gr.Dropdown:
    """A dropdown that also takes typed values, documented in the API as any text rather than only its
    first choices (an instance attribute: a gr.Dropdown subclass would make Gradio write a .pyi stub)."""
    dropdown = gr.Dropdown(*args, allow_custom_value=True, **kwargs)
    dropdown.api_info = lambda: {"type": "string"}
    return dropdown
