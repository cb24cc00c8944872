"""FREE's SAMC loss and FR module against slow forms written as the reference writes them
(`center_loss.py`, `model.py:104-131`): values and gradients; and the per-epoch evaluation
(`train_free.py:333-343`, `classifier.py`): its random draws and classifiers."""

from __future__ import annotations

import copy

import pytest
import torch
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.free.losses import random_other_classes, samc_loss, squared_distances
from unseen.methods.free.networks import FeatureRefinement


def _reference_samc(mu, labels, centers, margin, incenter_weight, negative):
    """`TripCenterLoss_min_margin` / `TripCenterLoss_margin` as written: the expanded distance
    matrix, boolean-mask gathers and, for the nearest negative, the per-sample loop."""
    batch, num_classes = mu.shape[0], centers.shape[0]
    distmat = (mu.pow(2).sum(1, keepdim=True).expand(batch, num_classes)
               + centers.pow(2).sum(1, keepdim=True).expand(num_classes, batch).t())
    distmat = distmat.addmm(mu, centers.t(), beta=1, alpha=-2)
    classes = torch.arange(num_classes)
    mask = labels.unsqueeze(1).expand(batch, num_classes).eq(classes.expand(batch, num_classes))
    dist = distmat[mask]
    if negative == "nearest":
        other = torch.zeros(batch, num_classes - 1)
        for i in range(batch):
            other[i] = distmat[i, mask[i, :] == 0]
        dist_other, _ = other.min(dim=1)
    else:
        index = torch.randint(num_classes, (batch,))
        other_labels = labels + index
        other_labels[other_labels >= num_classes] -= num_classes
        mask_other = other_labels.unsqueeze(1).expand(batch, num_classes).eq(
            classes.expand(batch, num_classes))
        dist_other = distmat[mask_other]
    hinge = margin + incenter_weight * dist - (1 - incenter_weight) * dist_other
    return torch.max(hinge, torch.tensor(0.0)).sum() / batch


def _inputs(seed: int, batch: int = 40, classes: int = 7, dim: int = 5):
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, dim, generator=generator, requires_grad=True)
    centers = torch.randn(classes, dim, generator=generator, requires_grad=True)
    labels = torch.randint(classes, (batch,), generator=generator)
    return mu, labels, centers


@pytest.mark.parametrize("negative", ["nearest", "random"])
@pytest.mark.parametrize(("margin", "incenter_weight"), [(5.0, 0.5), (50.0, 0.1), (1.0, 0.8)])
def test_samc_matches_the_reference_form_in_value_and_gradients(negative, margin,
                                                               incenter_weight):
    losses, gradients = [], []
    for form in (samc_loss, _reference_samc):
        mu, labels, centers = _inputs(seed=3)
        torch.manual_seed(11)  # the same negatives for the random variant
        loss = form(mu, labels, centers, margin, incenter_weight, negative)
        loss.backward()
        losses.append(loss.detach())
        gradients.append((mu.grad, centers.grad))
    assert torch.allclose(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    for ours, reference in zip(gradients[0], gradients[1], strict=True):
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6)
    # some hinges are active and some are not at margin 1, so the check covers both branches
    assert losses[0] > 0


def test_samc_hinge_is_inactive_beyond_the_margin():
    mu, labels, centers = _inputs(seed=4)
    with torch.no_grad():
        mu.copy_(centers[labels])  # every sample on its own centre: d(i, y_i) = 0
        centers.mul_(100.0)  # ... and far from the others
        mu.copy_(centers[labels])
    loss = samc_loss(mu, labels, centers, 1.0, 0.5, "nearest")
    assert float(loss.detach()) == 0.0


def test_squared_distances_are_squared_euclidean():
    mu, _, centers = _inputs(seed=5)
    expected = torch.cdist(mu.double(), centers.double()).pow(2)
    assert torch.allclose(squared_distances(mu, centers).double(), expected, atol=1e-4)


def test_random_negatives_wrap_and_can_equal_the_label():
    torch.manual_seed(0)
    labels = torch.arange(6).repeat(500)
    others = random_other_classes(labels, 6)
    assert int(others.min()) >= 0 and int(others.max()) <= 5
    same = (others == labels).float().mean()
    assert 0.1 < float(same) < 0.25  # probability 1/6: the offset can be 0 (free.md §3.1.5)
    torch.manual_seed(0)
    offsets = torch.randint(6, (labels.shape[0],))  # one randint on the CPU generator
    assert torch.equal(others, (labels + offsets) % 6)


def test_feature_refinement_forward_is_the_reference_forward():
    torch.manual_seed(0)
    fr = FeatureRefinement(feature_dim=12, hidden_dim=9, semantic_dim=4, num_seen=3)
    x = torch.rand(6, 12)
    torch.manual_seed(1)
    refined = fr(x)
    hidden = torch.nn.functional.leaky_relu(fr.fc1(x), 0.2)
    latent = fr.fc3(hidden)
    torch.manual_seed(1)
    eps = torch.randn(6, 4)
    mu, sigma = latent[:, :4], torch.sigmoid(latent[:, 4:])
    assert torch.equal(refined.hidden, hidden) and torch.equal(refined.mu, mu)
    assert torch.equal(refined.sigma, sigma)
    assert torch.allclose(refined.reconstruction, torch.sigmoid(eps * sigma + mu))
    # the classifier input: [x ; h ; Sigmoid(mu + sigma * eps)] (noisy) or [x ; h ; Sigmoid(mu)]
    torch.manual_seed(1)
    noisy = fr.classifier_features(x, stochastic=True)
    assert torch.allclose(noisy, torch.cat([x, hidden, refined.reconstruction], 1))
    before = torch.get_rng_state()
    plain = fr.classifier_features(x, stochastic=False)
    assert torch.equal(torch.get_rng_state(), before)  # no draw
    assert torch.allclose(plain, torch.cat([x, hidden, torch.sigmoid(mu)], 1))
    assert plain.shape == (6, 12 + 9 + 4)


def test_feature_refinement_initialisation_and_dead_heads():
    torch.manual_seed(2)
    fr = FeatureRefinement(feature_dim=30, hidden_dim=20, semantic_dim=6, num_seen=5)
    for layer in (fr.fc1, fr.fc3, fr.discriminator, fr.classifier):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
        assert float(layer.weight.detach().abs().max()) < 0.1  # N(0, 0.02^2), not the default init
    assert 0.015 < float(fr.fc1.weight.detach().std()) < 0.025
    # the dead heads exist with the reference's shapes (their init draws keep the stream)
    assert fr.discriminator.weight.shape == (1, 6) and fr.classifier.weight.shape == (5, 6)
    x = torch.rand(4, 30)
    fr(x).reconstruction.sum().backward()
    assert fr.discriminator.weight.grad is None and fr.classifier.weight.grad is None


# ------------------------------------------------------------------ the per-epoch evaluation

def _reference_fr(fr, x):
    """model.py:104-131 (FR.forward): (hidden, Sigmoid(reparameter(mus, stds)), mus)."""
    hidden = torch.nn.functional.leaky_relu(fr.fc1(x), 0.2)
    latent = fr.fc3(hidden)
    a = fr.semantic_dim
    mus, stds = latent[:, :a], torch.sigmoid(latent[:, a:])
    encoder_out = torch.randn_like(mus) * stds + mus  # reparameter
    return hidden, torch.sigmoid(encoder_out), mus


def _reference_classifier(train_x, train_y, data, nclass, lr, nepoch, batch_size, fr, fixed):
    """classifier.py's CLASSIFIER with netFR (`:21-63`, `fit` `:93-123`, `next_batch`
    `:125-159`, `compute_fear_out` `:217-242`); `fixed` reads Sigmoid(mus) instead of the noisy
    sample (our fixed mode; the draws are the same). Each epoch's weights."""
    input_dim = train_x.size(1)
    model = torch.nn.Sequential(torch.nn.Linear(input_dim, nclass),  # :35, discarded
                                torch.nn.LogSoftmax(dim=1))
    input_dim = input_dim + fr.fc1.out_features + fr.semantic_dim  # :41
    model = torch.nn.Sequential(torch.nn.Linear(input_dim, nclass),  # :42
                                torch.nn.LogSoftmax(dim=1))

    def compute_fear_out(test_x):
        new_test_x = torch.zeros(test_x.size(0), input_dim)
        for start in range(0, test_x.size(0), batch_size):
            x = test_x[start:start + batch_size]
            with torch.no_grad():
                hidden, feat2, mus = _reference_fr(fr, x)
            new_test_x[start:start + batch_size] = torch.cat(
                [x, hidden, torch.sigmoid(mus) if fixed else feat2], 1)
        return new_test_x

    seen = data.eval_seen_count
    train_x = compute_fear_out(train_x)
    test_unseen = compute_fear_out(data.eval_features[seen:])  # :45
    test_seen = compute_fear_out(data.eval_features[:seen])  # :46
    model[0].weight.data.normal_(0.0, 0.02)  # :48, util.weights_init
    model[0].bias.data.fill_(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    ntrain, index_in_epoch, epochs_completed = train_x.size(0), 0, 0
    weights = []
    for _ in range(nepoch):
        for _ in range(0, ntrain, batch_size):
            model.zero_grad()
            start = index_in_epoch  # next_batch, literally
            if epochs_completed == 0 and start == 0:
                perm = torch.randperm(ntrain)
                train_x, train_y = train_x[perm], train_y[perm]
            if start + batch_size > ntrain:
                epochs_completed += 1
                rest = ntrain - start
                x_rest, y_rest = train_x[start:ntrain], train_y[start:ntrain]
                perm = torch.randperm(ntrain)
                train_x, train_y = train_x[perm], train_y[perm]
                index_in_epoch = batch_size - rest
                x = torch.cat((x_rest, train_x[0:index_in_epoch]))
                y = torch.cat((y_rest, train_y[0:index_in_epoch]))
            else:
                index_in_epoch += batch_size
                x, y = train_x[start:index_in_epoch], train_y[start:index_in_epoch]
            torch.nn.functional.nll_loss(model(x), y).backward()
            optimizer.step()
        weights.append(model[0].weight.detach().clone())
    return weights, torch.cat([test_seen, test_unseen])


@pytest.mark.parametrize("replicate", [False, True])
def test_the_evaluation_draws_as_the_reference(replicate):
    """One evaluation against train_free.py:333-343 + classifier.py written out: synthesis
    noise per class; the discarded Linear(2048, K)'s default init; the real one's default
    init; FR's eps per block of syn_num rows over [train ; synthetic], test_unseen, test_seen;
    the normal_ re-init; the carry-over permutations. The same RNG state afterwards and the
    same classifier weights, in bug mode (noisy features) and fixed mode (Sigmoid(mu), the
    same draws)."""
    from unseen.data.synthetic import synthetic_benchmark
    from unseen.data.tasks import make_test_task
    from unseen.methods.free import FREE, FREEConfig
    from unseen.methods.generative.data import task_tensors

    config = FREEConfig().updated({
        "encoder_hidden": 16, "generator_hidden": 20, "critic_hidden": 16,
        "refinement_hidden": 24, "syn_num": 30, "classifier_epochs": 3, "device": "cpu",
        "replicate_reference_bugs": replicate})
    method = FREE(config, seed=0)
    data = task_tensors(make_test_task(synthetic_benchmark()), torch.device("cpu"))
    torch.manual_seed(0)
    method._build(method._architecture_for(data))
    generator, fr = copy.deepcopy(method.generator), copy.deepcopy(method.refinement)
    torch.manual_seed(7)
    report = method._evaluate(data, 0, {})
    ours = torch.get_rng_state()

    torch.manual_seed(7)
    num, nclass = config.syn_num, data.unseen_semantics.shape[0]
    syn_feature = torch.empty(nclass * num, data.features.shape[1])
    syn_noise = torch.empty(num, data.unseen_semantics.shape[1])
    with torch.no_grad():
        for i in range(nclass):  # generate_syn_feature, train_free.py:109-131
            syn_noise.normal_(0, 1)
            syn_feature[i * num:(i + 1) * num] = generator(
                syn_noise, data.unseen_semantics[i].repeat(num, 1))
    weights, eval_inputs = _reference_classifier(
        torch.cat((data.features, syn_feature)),
        torch.cat((data.train_positions, data.unseen_positions.repeat_interleave(num))),
        data, data.num_classes, config.classifier_lr, config.classifier_epochs, num, fr,
        fixed=not replicate)
    assert torch.equal(torch.get_rng_state(), ours)
    for epoch, want in enumerate(weights, start=1):
        got = method.classifiers.entry(f"classifier_epoch={epoch}")["weight"]
        assert torch.allclose(got, want, rtol=0, atol=1e-5), epoch
    # the candidates were scored on the same (noisy or not) evaluation inputs
    name = f"classifier_epoch={config.classifier_epochs}"
    entry = method.classifiers.entry(name)
    log_probs = torch.log_softmax(eval_inputs @ entry["weight"].T + entry["bias"], dim=1)
    assert torch.allclose(report.gzsl_candidates[name], log_probs, atol=1e-5)
    # Control: the shared trainer's order without the hooks (no discarded classifier, the
    # transform in its own order) leaves the reference's stream.
    from unseen.methods.generative.trainer import GenerativeMethod

    method._before_classifier = lambda feature_dim, num_classes: False
    method._classifier_sets = GenerativeMethod._classifier_sets.__get__(method)
    torch.manual_seed(7)
    method._evaluate(data, 0, {})
    assert not torch.equal(torch.get_rng_state(), ours)
