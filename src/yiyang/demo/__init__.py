"""The demo: a synthetic district, imported through the real pipeline."""
