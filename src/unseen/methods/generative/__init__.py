"""What the feature-generating GZSL methods share (docs/methods/generative-skeleton.md).

- `networks`: `init_linear_`, `ConditionalGenerator` (ReLU or Sigmoid output, optional
  feedback), `ConditionalCritic`, `VAEEncoder`, `LinearLogSoftmax`;
- `wgan`: `Batch`, `random_batch`, `GradientPenalty` (fixed or adaptive lambda),
  `critic_terms` (closed-form penalty), `critic_loss`;
- `vae`: `reparameterize`, `vae_loss`, `weighted_l1`;
- `synthesis`: `synthesize_per_class`;
- `classifier`: `adam`, `CarryOverBatches`, `ShuffledBatches`, `train_classifier`;
- `candidates`: `CandidateClassifiers`, the final classifiers kept by candidate name.
"""
