"""TF-VAEGAN (Narayan et al., ECCV 2020), faithful to the authors' code as it runs.

`TFVAEGAN` is the `GZSLMethod`, `TFVAEGANConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `networks` (the semantic decoder and the feedback module),
`losses`, `method` (training loop, evaluation, state), `presets`.
"""

from unseen.methods.tfvaegan.method import TFVAEGAN, TFVAEGANConfig
from unseen.methods.tfvaegan.presets import PRESETS

__all__ = ["PRESETS", "TFVAEGAN", "TFVAEGANConfig"]
