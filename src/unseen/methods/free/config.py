"""FREE's hyperparameters (`--name` = the reference's flag, shiming-chen/FREE 35769e5)."""

from __future__ import annotations

from dataclasses import dataclass

from unseen.methods.base import option
from unseen.methods.generative.trainer import SpeedOptions


@dataclass
class FREEConfig(SpeedOptions):
    """Defaults: CUB's script (`run_cub.py`), whose values most scripts share; the presets hold
    every script. `batch_size` is clamped to the number of training rows.

    `replicate_reference_bugs` switches three behaviours of the reference code (docs/methods/
    free.md §3.1, §4): the SAMC centres' gradients are never cleared (fixed: cleared before
    every critic step); with `freeze_refinement`, FR still takes an Adam step on zero gradients
    after every generator step (PyTorch 1.x; fixed: no step); the classifier reads FR's noisy
    Sigmoid(mu + sigma * eps) of every row, test rows included (fixed: Sigmoid(mu)).
    """

    epochs: int = option(501, "training epochs [--nepoch; scripts 301-601]")
    replicate_reference_bugs: bool = option(
        False, "the reference's bugs: SAMC centre gradients never cleared, a zero-gradient Adam "
               "step on a frozen FR, noisy FR features in the classifier inputs")
    batch_size: int = option(64, "real features per critic step [--batch_size]")
    encoder_hidden: int = option(4096, "encoder hidden width (hard-coded encoder_layer_sizes)")
    generator_hidden: int = option(4096, "generator hidden width (hard-coded "
                                         "decoder_layer_sizes)")
    critic_hidden: int = option(4096, "critic hidden width [--ndh; code default 1024, every "
                                      "script 4096]")
    refinement_hidden: int = option(4096, "FR hidden width, also in the classifier input "
                                          "[--ngh]")
    critic_iterations: int = option(1, "critic (and FR) steps per generator step "
                                       "[--critic_iter; code default 5, FLO 5]")
    passes_per_epoch: int = option(2, "identical passes over the data per epoch [--loop]")
    iterations_per_epoch: int = option(0, "generator steps per pass (passes_per_epoch of them "
                                          "per epoch); 0: ceil(N_train / batch_size), as the "
                                          "reference")
    lr: float = option(1e-4, "Adam learning rate of E, G, D and the SAMC centres [--lr]")
    refinement_lr: float = option(1e-4, "Adam learning rate of FR [--dec_lr]")
    beta1: float = option(0.5, "Adam beta1 of G, D, FR and the centres (E: 0.9, hard-coded) "
                               "[--beta1]")
    gp_weight: float = option(10.0, "initial gradient-penalty weight lambda [--lambda1]")
    adaptive_gp: bool = option(True, "grow lambda by 1.1 when the mean (||grad|| - 1)^2 > 1.05, "
                                     "shrink it when < 1.001 (train_free.py:272-276)")
    gamma_d: float = option(10.0, "weight of the critic loss and its penalty [--gammaD; SUN 1]")
    gamma_g: float = option(10.0, "weight of the adversarial term of G [--gammaG; SUN 1]")
    encoded_noise: bool = option(True, "the critic's fake uses the encoder's z, and G's "
                                       "adversarial term its reconstruction [--encoded_noise; "
                                       "FLO: N(0, I)]")
    recons_weight: float = option(0.001, "weight of FR's weighted-L1 semantic reconstruction "
                                         "[--recons_weight; SUN 0.1]")
    freeze_refinement: bool = option(False, "FR gets no gradient from the generator step "
                                            "[--freeze_dec; AWA1, AWA2]")
    center_weight: float = option(0.5, "weight of the SAMC loss on FR [--center_weight]")
    center_margin: float = option(200.0, "SAMC margin Delta [--center_margin]")
    incenter_weight: float = option(0.8, "SAMC weight w of the own-centre distance (1 - w: "
                                         "the other centre's) [--incenter_weight]")
    samc_negative: str = option("random", "SAMC negative centre: random (CUB, FLO, SUN) or "
                                          "nearest (AWA1, AWA2, APY)")
    syn_num: int = option(100, "generated features per unseen class [--syn_num]")
    classifier_lr: float = option(1e-3, "final classifier learning rate [--classifier_lr]")
    classifier_epochs: int = option(25, "final classifier epochs, one candidate each "
                                        "(hard-coded, train_free.py:343)")
    classifier_batch_size: int = option(0, "final classifier batch; 0: syn_num (the "
                                           "reference's coupling)")
    zsl_classifier: bool = option(False, "also train an unseen-only softmax on the generated "
                                         "features (T1 candidates); the reference has none")
    zsl_classifier_epochs: int = option(25, "epochs of that ZSL softmax (TF-VAEGAN's 25)")
    l2_semantics: bool = option(True, "divide every class semantic vector by its L2 norm "
                                      "(util.py:50)")
