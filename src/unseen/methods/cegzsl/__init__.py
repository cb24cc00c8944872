"""CE-GZSL (Han et al., CVPR 2021), faithful to the reference as it runs and fast on CPU.

`CEGZSL` is the `GZSLMethod`, `CEGZSLConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `networks` (G, D, E+H, F, classifier), `losses`, `classifier`
(the per-epoch softmax), `method` (training loop, evaluation, state), `presets`.
"""

from unseen.methods.cegzsl.method import CEGZSL, CEGZSLConfig
from unseen.methods.cegzsl.presets import PRESETS

__all__ = ["CEGZSL", "CEGZSLConfig", "PRESETS"]
