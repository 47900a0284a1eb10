"""Plumbing for the GPU-poor ESMFold notebooks: loading, folding, measuring, rendering (nothing runs on import)."""

import logging
import warnings

# Messages about the libraries, not the reader's code, silenced before any of them is imported (red text in a
# notebook should mean something): tqdm's text-progress-bar notice where Jupyter widgets are missing, torchao's
# optional kernels this machine cannot load, and torch's pytree deprecation notices raised while torchao registers.
warnings.filterwarnings("ignore", message="IProgress not found")
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__version__ = "0.1.0"
