"""FREE (Chen et al., ICCV 2021), faithful to the authors' code as it runs.

`FREE` is the `GZSLMethod`, `FREEConfig` its hyperparameters; `PRESETS` holds the per-dataset
settings. Modules: `networks` (the feature refinement module FR), `losses` (the vectorised
self-adaptive margin centre loss), `config`, `method` (training loop, evaluation, state),
`presets`. E, G, D, the final softmax and the VAE / WGAN-GP terms are the shared generative
pieces (`unseen.methods.generative`).
"""

from unseen.methods.free.config import FREEConfig
from unseen.methods.free.method import FREE
from unseen.methods.free.presets import PRESETS

__all__ = ["FREE", "FREEConfig", "PRESETS"]
