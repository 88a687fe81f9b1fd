"""Instruct Studio domain code: plain Python, no gradio import (see curation/ui for the UI)."""
