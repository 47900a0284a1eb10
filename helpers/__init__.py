"""Plumbing for the GPU-poor ESMFold notebooks: loading, folding, measuring, rendering (nothing runs on import)."""

__version__ = "0.1.0"
