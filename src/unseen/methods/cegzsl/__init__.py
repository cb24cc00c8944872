"""CE-GZSL (Han et al., CVPR 2021), faithful to the reference as it runs and fast on CPU.

`CEGZSL` is the `GZSLMethod`, `CEGZSLConfig` its hyperparameters; `PRESETS` holds the
per-dataset settings. Modules: `networks` (E+H, F), `losses` (SupCon, class-level loss),
`method` (the `GenerativeMethod` hooks), `presets`, `portable` (model directories, added
classes). G, D, the WGAN-GP terms, the final softmax and the loop / evaluation / state are the
shared `unseen.methods.generative`.
"""

from unseen.methods.cegzsl.method import CEGZSL, CEGZSLConfig
from unseen.methods.cegzsl.presets import PRESETS

__all__ = ["CEGZSL", "CEGZSLConfig", "PRESETS"]
