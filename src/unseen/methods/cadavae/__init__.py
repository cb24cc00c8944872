"""CADA-VAE (Schönfeld et al., CVPR 2019), faithful to the authors' code.

`CADAVAE` is the `GZSLMethod`, `CADAVAEConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `networks` (the two VAEs), `losses` (objective, warm-ups,
reparameterisation), `latents` (the latent-space classifier's training set), `method`
(training loop, evaluation, state), `presets`, `portable` (classes added at predict time).
"""

from unseen.methods.cadavae.method import CADAVAE, CADAVAEConfig
from unseen.methods.cadavae.presets import PRESETS

__all__ = ["CADAVAE", "CADAVAEConfig", "PRESETS"]
