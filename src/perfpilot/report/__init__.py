"""Renderers of results and analyses."""
