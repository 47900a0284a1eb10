"""Plumbing for the GPU-poor ESMFold notebooks: loading, folding, measuring, rendering (nothing runs on import)."""

import warnings

# tqdm falls back to text progress bars where Jupyter widgets are missing (Colab, plain Jupyter) and says so in red:
# not the reader's concern.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
