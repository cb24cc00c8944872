"""f-CLSWGAN (Xian et al., CVPR 2018), faithful to the authors' code as it runs.

`FCLSWGAN` is the `GZSLMethod`, `FCLSWGANConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `seen_classifier` (the frozen pre-trained softmax of Eq. 4),
`losses` (the generator's objective), `method` (the `GenerativeMethod` hooks), `presets`,
`portable` (classes added at predict time). G, D, the WGAN-GP terms, the synthesis, the final
softmax and the loop / evaluation / state are the shared `unseen.methods.generative`.
"""

from unseen.methods.fclswgan.method import FCLSWGAN, FCLSWGANConfig
from unseen.methods.fclswgan.presets import PRESETS

__all__ = ["FCLSWGAN", "FCLSWGANConfig", "PRESETS"]
