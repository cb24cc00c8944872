"""f-CLSWGAN (Xian et al., CVPR 2018), faithful to the authors' code as it runs.

`FCLSWGAN` is the `GZSLMethod`, `FCLSWGANConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `seen_classifier` (the frozen pre-trained softmax of Eq. 4),
`losses`, `sampling` (random batches, per-class synthesis), `method` (training loop,
evaluation, state), `presets`. G, D, the final softmax and the WGAN-GP terms are CE-GZSL's
(`unseen.methods.cegzsl`): the same networks and maths.
"""

from unseen.methods.fclswgan.method import FCLSWGAN, FCLSWGANConfig
from unseen.methods.fclswgan.presets import PRESETS

__all__ = ["FCLSWGAN", "FCLSWGANConfig", "PRESETS"]
