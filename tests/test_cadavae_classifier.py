"""CADA-VAE's classifier stage under `reference_classifier`: the init and the batch count it
switches, seeded runs, and a literal slow form of the reference's stage (`vaemodel.py:239-423`,
`final_classifier.py:153-220`, `models.py:6-11` at 26f0085, written out below) that must give
our weights."""

from __future__ import annotations

import math

import pytest
import torch
from test_cadavae_method import TINY
from test_cegzsl_method import (
    RecordingMonitor,
    _one_thread,  # noqa: F401  (autouse: one torch thread)
)
from torch import nn
from torch.utils.data import DataLoader, Dataset

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.methods.cadavae import CADAVAE, CADAVAEConfig
from unseen.methods.generative.data import task_tensors
from unseen.methods.generative.networks import LinearLogSoftmax

BATCH = 64


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def _method(reference: bool, seed: int = 0, **overrides) -> CADAVAE:
    config = CADAVAEConfig().updated({**TINY, "classifier_batch_size": BATCH,
                                      "reference_classifier": reference, **overrides})
    return CADAVAE(config, seed=seed)


def _train_rows(task, config: CADAVAEConfig) -> int:
    return (task.seen_classes.size * config.seen_latents_per_class
            + task.unseen_classes.size * config.unseen_latents_per_class)


@pytest.mark.parametrize("reference", [True, False])
def test_the_option_switches_init_and_batches_per_epoch(task, monkeypatch, reference):
    """Spy on the classifier's forward: its weights at the first call are the init; training
    calls (grad enabled) per epoch are floor(n / B) with the option, ceil(n / B) without."""
    first: dict[str, torch.Tensor] = {}
    training_calls = []
    forward = LinearLogSoftmax.forward

    def spy(self, inputs):
        if not first:
            first.update(weight=self.fc.weight.detach().clone(),
                         bias=self.fc.bias.detach().clone())
        if torch.is_grad_enabled():
            training_calls.append(inputs.shape[0])
        return forward(self, inputs)

    monkeypatch.setattr(LinearLogSoftmax, "forward", spy)
    method = _method(reference)
    method.fit(task, RecordingMonitor())
    n, epochs = _train_rows(task, method.config), method.config.classifier_epochs
    assert n % BATCH != 0  # floor and ceil differ
    per_epoch = n // BATCH if reference else math.ceil(n / BATCH)
    assert len(training_calls) == epochs * per_epoch
    assert set(training_calls) == {BATCH}  # full batches either way (carry-over included)
    weight, bias = first["weight"], first["bias"]
    assert torch.count_nonzero(bias) == 0
    fan_out, fan_in = weight.shape
    if reference:  # xavier_uniform gain 0.5: U(-bound, bound), std bound / sqrt(3)
        bound = 0.5 * math.sqrt(6.0 / (fan_in + fan_out))
        assert weight.abs().max() <= bound and weight.abs().max() > 0.8 * bound
        assert abs(weight.std().item() - bound / math.sqrt(3)) < 0.25 * bound / math.sqrt(3)
    else:  # N(0, 0.02^2)
        assert abs(weight.std().item() - 0.02) < 0.005


def _classifier(method: CADAVAE) -> tuple[torch.Tensor, torch.Tensor]:
    _, weight, bias = method.classifiers.entries[method.default_candidate]
    return weight, bias


def test_seeded_runs_are_deterministic_and_the_option_changes_them(task):
    a, b, other_seed, carry = (_method(True, 3), _method(True, 3), _method(True, 4),
                               _method(False, 3))
    for method in (a, b, other_seed, carry):
        method.fit(task, RecordingMonitor())
    assert all(torch.equal(p, q) for p, q in zip(_classifier(a), _classifier(b), strict=True))
    assert not torch.equal(_classifier(a)[0], _classifier(other_seed)[0])
    assert not torch.allclose(_classifier(a)[0], _classifier(carry)[0], atol=1e-3)
    # the option touches the classifier stage only: the VAEs train identically
    for p, q in zip(a.vaes.parameters(), carry.vaes.parameters(), strict=True):
        assert torch.equal(p, q)


# ---- the reference's classifier stage, literally (names and steps as in the official code)

class LINEAR_LOGSOFTMAX(nn.Module):  # noqa: N801  (vaemodel.py:14-23; the name matters below)
    def __init__(self, input_dim, nclass):
        super().__init__()
        self.fc = nn.Linear(input_dim, nclass)
        self.logic = nn.LogSoftmax(dim=1)
        self.lossfunction = nn.NLLLoss()

    def forward(self, x):
        return self.logic(self.fc(x))


def weights_init(m):  # models.py:6-11 ('LINEAR_LOGSOFTMAX' does not contain 'Linear')
    if m.__class__.__name__.find("Linear") != -1:
        m.bias.data.fill_(0)
        nn.init.xavier_uniform_(m.weight, gain=0.5)


class TrainDataset(Dataset):  # final_classifier.py:330-343
    def __init__(self, train_X, train_Y):  # noqa: N803
        self.train_X, self.train_Y = train_X, train_Y.long()

    def __len__(self):
        return self.train_X.size(0)

    def __getitem__(self, idx):
        return {"x": self.train_X[idx, :], "y": self.train_Y[idx]}


def _reference_stage(vaes, data, config: CADAVAEConfig) -> tuple[nn.Module, torch.Tensor]:
    """`train_classifier` of vaemodel.py (GZSL, 0-shot), on the CPU; labels are our task
    positions (the reference's are global ids of the same classes)."""
    def reparameterize(mu, logvar):  # vaemodel.py:92-99, with noise
        sigma = torch.exp(logvar)
        eps = torch.FloatTensor(logvar.size()[0], 1).normal_(0, 1).expand(sigma.size())
        return mu + sigma * eps

    def sample_train_data_on_sample_per_class_basis(features, label, sample_per_class):
        for i, s in enumerate(label.unique()):
            features_of_that_class = features[label == s, :]
            multiplier = math.ceil(max(1, sample_per_class / features_of_that_class.size(0)))
            features_of_that_class = features_of_that_class.repeat(multiplier, 1)
            if i == 0:
                features_to_return = features_of_that_class[:sample_per_class, :]
                labels_to_return = s.repeat(sample_per_class)
            else:
                features_to_return = torch.cat(
                    (features_to_return, features_of_that_class[:sample_per_class, :]), 0)
                labels_to_return = torch.cat((labels_to_return, s.repeat(sample_per_class)), 0)
        return features_to_return, labels_to_return

    clf = LINEAR_LOGSOFTMAX(config.latent_size, data.num_classes)  # :300
    clf.apply(weights_init)  # :306
    init = clf.fc.weight.detach().clone()
    with torch.no_grad():
        vaes.image_encoder(data.eval_features)  # test latents: mu, no RNG (:310-323)
        img_seen_feat, img_seen_label = sample_train_data_on_sample_per_class_basis(
            data.features, data.labels, config.seen_latents_per_class)
        unseen = torch.arange(data.unseen_semantics.shape[0])
        att_unseen_feat, att_unseen_label = sample_train_data_on_sample_per_class_basis(
            data.unseen_semantics, unseen, config.unseen_latents_per_class)
        z_seen_img = reparameterize(*vaes.image_encoder(img_seen_feat))
        z_unseen_att = reparameterize(*vaes.attribute_encoder(att_unseen_feat))
        train_X = torch.cat([z_seen_img, z_unseen_att], 0)  # noqa: N806
        seen_positions = torch.zeros(int(data.labels.max()) + 1, dtype=torch.long)
        seen_positions[data.labels] = data.train_positions  # seen-local label -> position
        train_Y = torch.cat([seen_positions[img_seen_label],  # noqa: N806
                             data.unseen_positions[att_unseen_label]])
    # CLASSIFIER.__init__ (final_classifier.py:60-63) and cls_train_steps calls of fit()
    f = list(filter(lambda x: x.requires_grad, clf.parameters()))
    optimizer = torch.optim.Adam(f, lr=config.classifier_lr, betas=(0.5, 0.999))
    for _ in range(config.classifier_epochs):
        dataloader = DataLoader(TrainDataset(train_X, train_Y),
                                batch_size=config.classifier_batch_size, shuffle=True,
                                drop_last=True)
        for batch in dataloader:
            clf.zero_grad()
            output = clf(batch["x"])
            loss = clf.lossfunction(output, batch["y"])
            loss.backward()
            optimizer.step()
    return clf, init


def test_reference_stage_written_out_gives_our_weights(task):
    method = _method(True, 5, epochs=2, classifier_epochs=3)
    method.fit(task, RecordingMonitor())
    data = task_tensors(task, method.device)
    torch.manual_seed(11)
    method._latent_classifier(data, 1, {})
    weight, bias = _classifier(method)
    torch.manual_seed(11)
    clf, init = _reference_stage(method.vaes, data, method.config)
    assert not torch.allclose(clf.fc.weight, init, atol=1e-3)  # it trained
    assert torch.allclose(clf.fc.weight, weight, rtol=0, atol=1e-6)
    assert torch.allclose(clf.fc.bias, bias, rtol=0, atol=1e-6)
    assert torch.count_nonzero(clf.fc.bias) > 0
