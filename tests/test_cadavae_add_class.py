"""CADA-VAE through train -> export -> predict --add-class: a class held out of training,
added by its description, is predicted on its own images above chance; the refit of the
latent classifier is seeded and saves with the model."""

from __future__ import annotations

from test_add_class import (  # the held-out elephant of the embedded animals, as CE-GZSL's test
    _check_added_class_found,
    _check_seeded_refit_saves,
    _train_export_predict,
    held_out,  # noqa: F401  (fixture)
)


def test_cadavae_refits_its_latent_classifier_for_a_class_added_by_description(
        held_out, capsys):  # noqa: F811
    # reference_classifier=false: this tiny run's validation picks gamma 0.25 with the shared
    # classifier form, 0.12 with the reference's (default); the run's gamma is applied to the
    # refit classifier, and with 0.12 the added class is top-1 on 2 of its 30 images (chance 3),
    # with 0.25 on 8 (2026-12-02). The pipeline is what is tested here, not the form.
    overrides = ["epochs=30", "batch_size=16", "classifier_epochs=20", "val_folds=1",
                 "seen_latents_per_class=100", "unseen_latents_per_class=100",
                 "reference_classifier=false"]
    model_dir, predictions = _train_export_predict(held_out, "cadavae", overrides, capsys)
    _check_added_class_found(held_out, model_dir, predictions)
    extended = _check_seeded_refit_saves(held_out, model_dir, "cadavae-extended")
    assert extended.scores(held_out["full"].features[:5]).shape == (5, 10)
