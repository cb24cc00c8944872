"""TF-VAEGAN against literal forms of the reference (`train_images.py`,
`networks/TFVAEGAN_model.py`): network outputs, losses (values and gradients), and whole
generator iterations of both passes (update order, random stream, which network moves), and
two epochs with the per-epoch evaluation between them (its random draws, its classifiers)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import ConditionalCritic as Critic
from unseen.methods.generative.wgan import GradientPenalty, critic_loss
from unseen.methods.tfvaegan import TFVAEGAN, TFVAEGANConfig
from unseen.methods.tfvaegan.losses import generator_loss
from unseen.methods.tfvaegan.networks import Feedback, SemanticDecoder

SLOPE = 0.2


# ------------------------------------------------------------------ literal reference forms

def _dec(dec: SemanticDecoder, x):
    """AttDec.forward: returns (out, hidden) with the norm written as the reference does."""
    hidden = F.leaky_relu(dec.fc1(x), SLOPE)
    h = dec.fc3(hidden)
    return h / h.pow(2).sum(1).sqrt().unsqueeze(1).expand(h.size(0), h.size(1)), hidden


def _feedback(f: Feedback, x):
    return F.leaky_relu(f.fc2(F.leaky_relu(f.fc1(x), SLOPE)), SLOPE)


def _gen(g, z, c, a1=None, feedback_layers=None):
    """Generator.forward with and without feedback."""
    x1 = F.leaky_relu(g.fc1(torch.cat((z, c), -1)), SLOPE)
    if feedback_layers is not None:
        x1 = x1 + a1 * feedback_layers
    return torch.sigmoid(g.fc2(x1))


def _enc(e, x, c):
    h = F.leaky_relu(e.fc1(torch.cat((x, c), -1)), SLOPE)
    h = F.leaky_relu(e.fc3(h), SLOPE)
    return e.linear_means(h), e.linear_log_var(h)


def _loss_fn(recon_x, x, mean, log_var):
    bce = F.binary_cross_entropy(recon_x + 1e-12, x.detach(), reduction="sum").sum() / x.size(0)
    kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp()) / x.size(0)
    return bce + kld


def _weighted_l1(pred, gt):
    wt = (pred - gt).pow(2)
    wt = wt / wt.sum(1).sqrt().unsqueeze(1).expand(wt.size(0), wt.size(1))
    loss = wt * (pred - gt).abs()
    return loss.sum() / loss.size(0)


def _gradient_penalty(critic, real, fake, att, alpha, lambda1):
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = critic(interpolates, att)
    (gradients,) = torch.autograd.grad(out, interpolates, torch.ones_like(out),
                                       create_graph=True)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * lambda1


# ------------------------------------------------------------------ networks and losses

def test_decoder_and_feedback_match_the_reference_forward():
    torch.manual_seed(0)
    dec, fb = SemanticDecoder(12, 16, 5).double(), Feedback(16).double()
    x = torch.rand(7, 12, dtype=torch.float64)
    out, hidden = _dec(dec, x)
    assert torch.allclose(dec(x), out, atol=1e-14)
    assert torch.allclose(dec.hidden(x), hidden, atol=1e-14) and not dec.hidden(x).requires_grad
    assert torch.allclose(dec.transform(x), torch.cat([x, out, hidden], 1), atol=1e-14)
    assert torch.allclose(out.norm(dim=1), torch.ones(7, dtype=torch.float64))
    assert torch.allclose(fb(hidden), _feedback(fb, hidden), atol=1e-14)


def test_critic_loss_scales_means_and_penalty_by_gamma_d_as_the_reference():
    torch.manual_seed(1)
    critic = Critic(12, 5, 16).double()
    with torch.no_grad():
        critic.fc1.weight.mul_(2000)  # input gradients far from norm 1: the penalty matters
    real, fake = torch.rand(9, 12, dtype=torch.float64), torch.rand(9, 12, dtype=torch.float64)
    att, alpha = torch.rand(9, 5, dtype=torch.float64), torch.rand(9, 1, dtype=torch.float64)
    gamma_d, lambda1 = 10.0, 3.0
    # train_images.py:157-188: backward(mone) of gammaD*mean D(x), backward(one) of
    # gammaD*mean D(x~), then gammaD * penalty.
    critic.zero_grad()
    d_real = gamma_d * critic(real, att).mean()
    d_real.backward(-torch.ones((), dtype=torch.float64))
    d_fake = gamma_d * critic(fake, att).mean()
    d_fake.backward(torch.ones((), dtype=torch.float64))
    gp = gamma_d * _gradient_penalty(critic, real, fake, att, alpha, lambda1)
    gp.backward()
    expected = (d_fake - d_real + gp).detach()
    expected_grads = [p.grad.clone() for p in critic.parameters()]
    critic.zero_grad()
    penalty = GradientPenalty(lambda1, adaptive=True)
    loss, terms = critic_loss(critic, real, fake, att, alpha, penalty, gamma_d)
    loss.backward()
    assert torch.allclose(loss, expected, rtol=0, atol=1e-9)
    assert torch.allclose(gamma_d * terms["gradient_penalty"], gp.detach(), rtol=0, atol=1e-9)
    deviation = penalty.update()  # the mean (||grad|| - 1)^2 that adapts lambda
    assert deviation == pytest.approx(float(gp.detach()) / (gamma_d * lambda1), rel=1e-12)
    assert deviation > 1.05 and penalty.weight == pytest.approx(lambda1 * 1.1)
    for got, want in zip((p.grad for p in critic.parameters()), expected_grads, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-8)


def test_generator_loss_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(2)
    critic = Critic(12, 5, 16).double().requires_grad_(False)
    dec = SemanticDecoder(12, 16, 5).double()
    x, att = torch.rand(8, 12, dtype=torch.float64), torch.rand(8, 5, dtype=torch.float64)
    att = att / att.norm(dim=1, keepdim=True)
    mu = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    recon = torch.rand(8, 12, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_(True)
    fake = torch.rand(8, 12, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_(True)
    leaves = [mu, logvar, recon, fake, *dec.parameters()]
    # train_images.py:219-249 with gammaG 10 and recons_weight 0.1
    expected = (_loss_fn(recon, x, mu, logvar) - 10.0 * critic(fake, att).mean()
                + 0.1 * _weighted_l1(_dec(dec, fake)[0], att))
    expected_grads = torch.autograd.grad(expected, leaves)
    loss, terms = generator_loss(critic, dec, recon, x, mu, logvar, fake, att, 10.0, 0.1)
    grads = torch.autograd.grad(loss, leaves)
    assert torch.allclose(loss, expected, rtol=0, atol=1e-10)
    assert float(terms["fake_reconstruction"].detach()) > 0.01
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-10)


# ------------------------------------------------------------------ whole iterations

def _reference_iteration(nets, opts, data, batch_size, loop, c, lambda1, bug_source=True):
    """One generator iteration of train_images.py:140-260, literally (float64, CPU)."""
    E, G, D, Fb, Dec = nets
    N, A = data.features.shape[0], data.seen_semantics.shape[1]
    D.requires_grad_(True)
    Dec.requires_grad_(True)
    gp_sum = 0.0
    for _ in range(c.critic_iterations):
        idx = torch.randperm(N)[0:batch_size]  # sample()
        x, att = data.features[idx], data.seen_semantics[data.labels[idx]]
        D.zero_grad()
        Dec.zero_grad()
        r_cost = c.recons_weight * _weighted_l1(_dec(Dec, x)[0], att)
        r_cost.backward()
        opts["decoder"].step()
        (c.gamma_d * D(x, att).mean()).backward(-torch.ones((), dtype=x.dtype))
        if c.encoded_noise:
            means, log_var = _enc(E, x, att)
            eps = torch.randn([batch_size, A], dtype=x.dtype)
            z = eps * torch.exp(0.5 * log_var) + means
        else:
            z = torch.empty(batch_size, A).normal_(0, 1).to(x.dtype)
        fake = _gen(G, z, att)
        if loop == 1:
            hidden = _dec(Dec, fake)[1].detach()
            fake = _gen(G, z, att, c.a1, _feedback(Fb, hidden))
        (c.gamma_d * D(fake.detach(), att).mean()).backward(torch.ones((), dtype=x.dtype))
        alpha = torch.rand(batch_size, 1).to(x.dtype)
        gp = c.gamma_d * _gradient_penalty(D, x, fake.detach(), att, alpha, lambda1)
        gp_sum += float(gp.detach())
        gp.backward()
        opts["critic"].step()
    gp_sum /= c.gamma_d * lambda1 * c.critic_iterations
    if gp_sum > 1.05:
        lambda1 *= 1.1
    elif gp_sum < 1.001:
        lambda1 /= 1.1
    D.requires_grad_(False)
    if c.recons_weight > 0 and c.freeze_dec:
        Dec.requires_grad_(False)
    for net in (E, G, Fb):
        net.zero_grad()
    means, log_var = _enc(E, x, att)
    eps = torch.randn([batch_size, A], dtype=x.dtype)
    z = eps * torch.exp(0.5 * log_var) + means
    recon_x = _gen(G, z, att)
    if loop == 1:
        hidden = _dec(Dec, recon_x)[1].detach()
        recon_x = _gen(G, z, att, c.a1, _feedback(Fb, hidden))
    err_g = _loss_fn(recon_x, x, means, log_var)
    if c.encoded_noise:
        fake = recon_x
    else:
        noise = torch.empty(batch_size, A).normal_(0, 1).to(x.dtype)
        fake = _gen(G, noise, att)
        if loop == 1:
            # the reference decodes recon_x here (the FLO bug); fixed: the fake's first pass
            hidden = _dec(Dec, recon_x if bug_source else fake)[1].detach()
            fake = _gen(G, noise, att, c.a1, _feedback(Fb, hidden))
    err_g = err_g + c.gamma_g * -D(fake, att).mean()
    Dec.zero_grad()
    err_g = err_g + c.recons_weight * _weighted_l1(_dec(Dec, fake)[0], att)
    err_g.backward()
    opts["encoder"].step()
    opts["generator"].step()
    if loop == 1:
        opts["feedback"].step()
    if c.recons_weight > 0 and not c.freeze_dec:
        opts["decoder"].step()
    return lambda1


TINY = {"batch_size": 16, "iterations_per_epoch": 1, "encoder_hidden": 24,
        "generator_hidden": 20, "critic_hidden": 18, "critic_iterations": 3, "lr": 1e-3,
        "feed_lr": 2e-3, "dec_lr": 5e-4, "a1": 0.7,
        "gamma_d": 10, "gamma_g": 10, "recons_weight": 0.1, "device": "cpu"}


def _built(**overrides) -> tuple[TFVAEGAN, SimpleNamespace]:
    method = TFVAEGAN(TFVAEGANConfig().updated({**TINY, **overrides}), seed=0)
    torch.manual_seed(0)
    method._build({"feature_dim": 14, "semantic_dim": 6, "encoder_hidden": 24,
                   "generator_hidden": 20, "critic_hidden": 18})
    for module in method._modules().values():
        module.double()  # the optimisers keep the same Parameter objects
    torch.manual_seed(1)
    semantics = torch.rand(5, 6, dtype=torch.float64)
    data = SimpleNamespace(features=torch.rand(40, 14, dtype=torch.float64),
                           labels=torch.arange(40) % 5,
                           seen_semantics=semantics / semantics.norm(dim=1, keepdim=True))
    return method, data


class _Quiet:
    def progress(self, iterable, description, total=None):
        return iterable


def _reference_generator_iterations(nets: dict, data, c, bug_source: bool):
    """One reference generator iteration of each pass (seed 5) on `nets`, with the reference's
    five Adam optimisers; returns the optimisers and lambda after them."""
    settings = {"encoder": (c.lr, (0.9, 0.999)), "generator": (c.lr, (0.5, 0.999)),
                "critic": (c.lr, (0.5, 0.999)), "feedback": (c.feed_lr, (0.5, 0.999)),
                "decoder": (c.dec_lr, (0.5, 0.999))}
    opts = {name: torch.optim.Adam(nets[name].parameters(), lr=lr, betas=betas)
            for name, (lr, betas) in settings.items()}
    torch.manual_seed(5)
    lambda1 = c.gp_weight
    for loop in (0, 1):
        lambda1 = _reference_iteration(list(nets.values()), opts, data, c.batch_size, loop, c,
                                       lambda1, bug_source=bug_source)
    return opts, lambda1


@pytest.mark.parametrize("options", [
    {},  # CUB-like: encoded noise, Dec trained in both phases
    {"freeze_dec": True, "a1": 0.01},  # AWA2-like
    {"encoded_noise": False, "replicate_reference_bugs": True},  # FLO as published
    {"encoded_noise": False, "replicate_reference_bugs": False},  # FLO fixed
])
def test_both_passes_follow_the_reference_iteration(options):
    method, data = _built(**options)
    c = method.config
    nets = {name: copy.deepcopy(module) for name, module in method._modules().items()}
    opts, lambda1 = _reference_generator_iterations(nets, data, c,
                                                    c.replicate_reference_bugs)
    reference_rng = torch.get_rng_state()
    torch.manual_seed(5)
    method._train_epoch(data, 0, _Quiet())  # one iteration of pass 0, then of pass 1
    assert torch.equal(torch.get_rng_state(), reference_rng)  # the same draws, in order
    assert method.penalty.weight == pytest.approx(lambda1, rel=1e-12)
    assert method.penalty.weight != c.gp_weight
    for name, module in method._modules().items():
        for (key, got), want in zip(module.named_parameters(), nets[name].parameters(),
                                    strict=True):
            assert torch.allclose(got, want, rtol=0, atol=1e-10), f"{name}.{key}"


def test_the_feedback_bug_switch_changes_only_the_unencoded_feedback_pass():
    finals = {}
    for options in ({"encoded_noise": False, "replicate_reference_bugs": True},
                    {"encoded_noise": False, "replicate_reference_bugs": False},
                    {"encoded_noise": True, "replicate_reference_bugs": True},
                    {"encoded_noise": True, "replicate_reference_bugs": False}):
        method, data = _built(**options)
        torch.manual_seed(5)
        method._train_epoch(data, 0, _Quiet())
        finals[tuple(options.values())] = torch.cat([p.detach().flatten() for module in (
            method.generator, method.feedback) for p in module.parameters()])
    # (the feedback is small at init, so is the difference; exact equality is the point)
    assert (finals[(False, True)] - finals[(False, False)]).abs().max() > 1e-12
    assert torch.equal(finals[(True, True)], finals[(True, False)])


# ------------------------------------------------------------------ the per-epoch evaluation

class _ReferenceClassifier:
    """classifier_images.py's CLASSIFIER with netDec, literally (`:15-55`, `fit` / `fit_zsl`
    `:60-116`, `next_batch` `:118-152`, `compute_dec_out` `:206-220`); keeps each epoch's
    weights instead of the accuracies."""

    def __init__(self, train_x, train_y, nclass, lr, nepoch, batch_size, dec):
        self.train_X, self.train_Y = train_x.clone(), train_y.clone()
        self.batch_size, self.nepoch = batch_size, nepoch
        input_dim = train_x.size(1)
        self.model = torch.nn.Sequential(torch.nn.Linear(input_dim, nclass),  # :29, discarded
                                         torch.nn.LogSoftmax(dim=1))
        self.dec = dec
        input_dim = input_dim + dec.fc3.out_features + dec.fc1.out_features  # :33-34
        self.model = torch.nn.Sequential(torch.nn.Linear(input_dim, nclass),  # :35
                                         torch.nn.LogSoftmax(dim=1))
        self.train_X = self.compute_dec_out(self.train_X, input_dim)  # (test rows: no draws)
        self.model[0].weight.data.normal_(0.0, 0.02)  # :39, util.weights_init
        self.model[0].bias.data.fill_(0)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.5, 0.999))
        self.index_in_epoch = self.epochs_completed = 0
        self.ntrain = self.train_X.size()[0]
        self.weights = self.fit()

    def fit(self):
        weights = []
        for _ in range(self.nepoch):
            for _ in range(0, self.ntrain, self.batch_size):
                self.model.zero_grad()
                batch_input, batch_label = self.next_batch(self.batch_size)
                F.nll_loss(self.model(batch_input), batch_label).backward()
                self.optimizer.step()
            weights.append(self.model[0].weight.detach().clone())
        return weights

    def next_batch(self, batch_size):
        start = self.index_in_epoch
        if self.epochs_completed == 0 and start == 0:
            perm = torch.randperm(self.ntrain)
            self.train_X, self.train_Y = self.train_X[perm], self.train_Y[perm]
        if start + batch_size > self.ntrain:
            self.epochs_completed += 1
            rest_num_examples = self.ntrain - start
            if rest_num_examples > 0:
                x_rest, y_rest = self.train_X[start:self.ntrain], self.train_Y[start:self.ntrain]
            perm = torch.randperm(self.ntrain)
            self.train_X, self.train_Y = self.train_X[perm], self.train_Y[perm]
            start = 0
            self.index_in_epoch = batch_size - rest_num_examples
            end = self.index_in_epoch
            if rest_num_examples > 0:
                return (torch.cat((x_rest, self.train_X[start:end])),
                        torch.cat((y_rest, self.train_Y[start:end])))
            return self.train_X[start:end], self.train_Y[start:end]
        self.index_in_epoch += batch_size
        return self.train_X[start:self.index_in_epoch], self.train_Y[start:self.index_in_epoch]

    def compute_dec_out(self, test_x, new_size):
        new_test_x = torch.zeros(test_x.size(0), new_size)
        for start in range(0, test_x.size(0), self.batch_size):
            x = test_x[start:start + self.batch_size]
            out, hidden = _dec(self.dec, x)
            new_test_x[start:start + self.batch_size] = torch.cat([x, out, hidden], 1).detach()
        return new_test_x


def _reference_evaluation(nets, data, c):
    """train_images.py:262-291: generate_syn_feature (`:80-106`), the GZSL CLASSIFIER on
    [train ; synthetic], the ZSL CLASSIFIER on the synthetic rows; their weights per epoch."""
    _, G, _, Fb, Dec = nets
    nclass, num = data.unseen_semantics.shape[0], c.syn_num
    syn_feature = torch.empty(nclass * num, data.features.shape[1])  # FloatTensor there
    syn_noise = torch.empty(num, data.unseen_semantics.shape[1])
    with torch.no_grad():
        for i in range(nclass):
            syn_att = data.unseen_semantics[i].repeat(num, 1)
            syn_noise.normal_(0, 1)
            fake = _gen(G, syn_noise, syn_att)
            fake = _gen(G, syn_noise, syn_att, c.a2, _feedback(Fb, _dec(Dec, fake)[1]))
            syn_feature[i * num:(i + 1) * num] = fake
    syn_label = data.unseen_positions.repeat_interleave(num)
    gzsl = _ReferenceClassifier(torch.cat((data.features, syn_feature)),
                                torch.cat((data.train_positions, syn_label)), data.num_classes,
                                c.classifier_lr, c.classifier_epochs, num, Dec)
    zsl = _ReferenceClassifier(syn_feature, torch.arange(nclass).repeat_interleave(num), nclass,
                               c.classifier_lr, c.zsl_classifier_epochs, num, Dec)
    return gzsl.weights, zsl.weights


def _tiny_task():
    torch.manual_seed(1)
    semantics = torch.rand(8, 6)
    semantics = semantics / semantics.norm(dim=1, keepdim=True)
    labels = torch.arange(40) % 5
    return TaskTensors(features=torch.rand(40, 14), labels=labels, train_positions=labels,
                       seen_semantics=semantics[:5], unseen_semantics=semantics[5:],
                       unseen_positions=torch.arange(5, 8), eval_features=torch.rand(12, 14),
                       eval_seen_count=6, num_classes=8)


EVAL = {"syn_num": 7, "classifier_epochs": 3, "zsl_classifier_epochs": 2, "a2": 0.6}


def _our_two_epochs(discard_first_classifier=True):
    """Epoch 1, its evaluation, epoch 2, from seed 5 (in the default dtype); the method, its
    networks as built, and the RNG states after the evaluation and after epoch 2."""
    method, _ = _built(**EVAL)
    for module in method._modules().values():
        module.to(torch.get_default_dtype())  # the optimisers keep the same Parameters
    built = {name: copy.deepcopy(module) for name, module in method._modules().items()}
    if not discard_first_classifier:
        method._before_classifier = lambda feature_dim, num_classes: None
    data = _tiny_task()
    torch.manual_seed(5)
    method._train_epoch(data, 0, _Quiet())
    method._evaluate(data, 0, {})
    after_evaluation = torch.get_rng_state()
    method._train_epoch(data, 1, _Quiet())
    return method, built, after_evaluation, torch.get_rng_state()


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def default_dtype(request):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(previous)


def test_the_first_evaluation_and_the_next_epoch_draw_as_the_reference(default_dtype):
    """Two epochs (1 generator iteration per pass) with the evaluation between them, against
    train_images.py + classifier_images.py written out: the same global RNG state after the
    evaluation (synthesis noise; per classifier the discarded Linear(2048, K)'s default init,
    the real one's default init and normal_ re-init, the carry-over permutations; GZSL then
    ZSL) and after the second epoch; the same classifier weights; in float64 the same
    networks (in float32 Adam's first steps of +-lr on near-zero gradients flip with the
    rounding, §9.4). float32 is the dtype that runs: its draws are the ones that count."""
    atol = 1e-10 if default_dtype == torch.float64 else 1e-5
    method, nets, ours_after_evaluation, ours_after_epoch_2 = _our_two_epochs()
    data, c = _tiny_task(), method.config
    opts, lambda1 = _reference_generator_iterations(nets, data, c, bug_source=True)
    gzsl_weights, zsl_weights = _reference_evaluation(list(nets.values()), data, c)
    assert torch.equal(torch.get_rng_state(), ours_after_evaluation)
    for prefix, weights in (("classifier_epoch", gzsl_weights), ("zsl_epoch", zsl_weights)):
        assert len(weights) == len([n for n in method.classifiers.entries if prefix in n])
        for epoch, want in enumerate(weights, start=1):
            got = method.classifiers.entry(f"{prefix}={epoch}")["weight"]
            assert torch.allclose(got, want, rtol=0, atol=atol), f"{prefix}={epoch}"
    for loop in (0, 1):
        lambda1 = _reference_iteration(list(nets.values()), opts, data, c.batch_size, loop, c,
                                       lambda1)
    assert torch.equal(torch.get_rng_state(), ours_after_epoch_2)
    assert method.penalty.weight == pytest.approx(lambda1, rel=1e-12)
    for name, module in method._modules().items():
        for (key, got), want in zip(module.named_parameters(), nets[name].parameters(),
                                    strict=True):
            assert got.dtype == default_dtype
            if default_dtype == torch.float64:
                assert torch.allclose(got, want, rtol=0, atol=1e-10), f"{name}.{key}"
    # Control: without the discarded classifiers the stream leaves the reference's.
    assert not torch.equal(_our_two_epochs(discard_first_classifier=False)[2],
                           ours_after_evaluation)
