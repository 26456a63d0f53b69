"""LARS and the learning-rate schedule, against hand-computed numbers."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from mast_bench.config import ConfigError, OptimConfig, load_recipe
from mast_bench.methods.vicreg import VICReg
from mast_bench.pretrain.lars import LARS, lars_param_groups
from mast_bench.pretrain.optimizer import build_optimizer, param_groups
from mast_bench.pretrain.schedule import LRSchedule, build_schedule, peak_lr, set_lr


def _linear(w, b) -> nn.Linear:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
        layer.bias.copy_(torch.tensor(b))
    return layer


def test_lars_step_by_hand() -> None:
    layer = _linear([[3.0, 4.0], [0.0, 0.0]], [1.0, -1.0])
    opt = LARS(lars_param_groups(layer, weight_decay=0.1), lr=2.0, momentum=0.9, eta=0.003)
    layer.weight.grad = torch.tensor([[0.6, 0.8], [0.0, 0.0]])
    layer.bias.grad = torch.tensor([0.5, 0.5])
    opt.step()
    # weight: d = g + 0.1·w = [[0.9, 1.2], [0, 0]], ‖w‖ = 5, ‖d‖ = 1.5, q = 0.003·5/1.5 = 0.01
    #         μ = 0.01·d = [[0.009, 0.012], [0, 0]]; w ← w − 2μ = [[2.982, 3.976], [0, 0]]
    torch.testing.assert_close(layer.weight.detach(), torch.tensor([[2.982, 3.976], [0.0, 0.0]]))
    # bias: no decay, no adaptation: μ = g; b ← b − 2·[0.5, 0.5] = [0, −2]
    torch.testing.assert_close(layer.bias.detach(), torch.tensor([0.0, -2.0]))
    # second step with the same gradients: bias μ = 0.9·0.5 + 0.5 = 0.95 → b = [0 − 1.9, −2 − 1.9]
    layer.bias.grad = torch.tensor([0.5, 0.5])
    layer.weight.grad = torch.zeros(2, 2)
    w_before = layer.weight.detach().clone()
    opt.step()
    torch.testing.assert_close(layer.bias.detach(), torch.tensor([-1.9, -3.9]))
    # weight: d = 0.1·w (decay only), q = 0.003·‖w‖/‖0.1 w‖ = 0.03, μ = 0.9·μ₁ + 0.03·0.1·w
    mu = 0.9 * torch.tensor([[0.009, 0.012], [0.0, 0.0]]) + 0.003 * w_before
    torch.testing.assert_close(layer.weight.detach(), w_before - 2.0 * mu)


def test_lars_trust_ratio_is_one_for_zero_norms() -> None:
    layer = _linear([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])
    opt = LARS(lars_param_groups(layer, weight_decay=0.0), lr=1.0, momentum=0.0, eta=0.001)
    layer.weight.grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    layer.bias.grad = torch.zeros(2)
    opt.step()  # ‖w‖ = 0 → q = 1: a plain SGD step
    torch.testing.assert_close(layer.weight.detach(), -torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def _tiny_vicreg():
    return VICReg(load_recipe({"model": {"backbone": "resnet_tiny", "stem": "small", "widths": [4, 8, 8, 8],
                                         "projector": [16, 16]}}))


def test_groups_exclude_biases_and_norms_from_decay_and_adaptation() -> None:
    m = _tiny_vicreg()
    groups = lars_param_groups(m, weight_decay=1e-6)
    adapted, plain = groups
    assert adapted["lars_adapt"] and adapted["weight_decay"] == 1e-6
    assert not plain["lars_adapt"] and plain["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in adapted["params"]) and all(p.ndim == 1 for p in plain["params"])
    names = {id(p): n for n, p in m.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert {"backbone.bn1.weight", "backbone.bn1.bias", "projector.0.bias", "projector.1.weight"} <= plain_names
    assert len(adapted["params"]) + len(plain["params"]) == len(list(m.parameters()))


def test_aux_parameters_get_their_own_group_and_lr_scale() -> None:
    m = _tiny_vicreg()
    m.logits = nn.Parameter(torch.zeros(3, 16))
    cfg = OptimConfig(aux_lr_scale=10.0)
    groups = param_groups(m, cfg)
    aux = [g for g in groups if g["name"] == "aux"]
    assert len(aux) == 1 and aux[0]["params"] == [m.logits]
    assert aux[0]["lr_scale"] == 10.0 and aux[0]["weight_decay"] == 0.0 and not aux[0]["lars_adapt"]
    assert all(m.logits is not p for g in groups if g["name"] != "aux" for p in g["params"])
    opt = build_optimizer(m, cfg)
    set_lr(opt, 0.5)
    assert sorted(g["lr"] for g in opt.param_groups) == [0.5, 0.5, 5.0]


@pytest.mark.parametrize("name", ["lars", "sgd", "adamw"])
def test_optimizer_state_loads_with_weights_only(name: str) -> None:
    m = _tiny_vicreg()
    opt = build_optimizer(m, OptimConfig(name=name))
    set_lr(opt, 0.1)
    out = m((torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)), (torch.zeros(4, 16), torch.zeros(4, 16)))
    out["loss"].backward()
    opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = build_optimizer(_tiny_vicreg(), OptimConfig(name=name))
    fresh.load_state_dict(state)
    assert len(fresh.state) == len(opt.state) > 0


def test_peak_lr_scales_with_batch() -> None:
    assert peak_lr(0.2, 2048) == pytest.approx(1.6)  # VICReg's R50 setting
    assert peak_lr(0.2, 256) == pytest.approx(0.2)


def test_schedule_values() -> None:
    cfg = OptimConfig(base_lr=0.2, warmup_epochs=2, final_lr_ratio=0.001)
    s = build_schedule(cfg, batch_size=512, steps_per_epoch=10, epochs=12)
    assert s == LRSchedule(peak=0.4, warmup_steps=20, total_steps=120, final_ratio=0.001)
    assert s(0) == 0.0  # VICReg starts its warm-up from 0
    assert s(10) == pytest.approx(0.2)
    assert s(20) == pytest.approx(0.4)
    end = 0.4 * 0.001
    assert s(70) == pytest.approx((0.4 + end) / 2)  # half-way through the cosine
    assert s(45) == pytest.approx(end + (0.4 - end) * 0.5 * (1 + math.cos(math.pi * 25 / 100)))
    assert s(120) == pytest.approx(end)
    decay = [s(i) for i in range(20, 121)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_fractional_warmup_and_no_warmup() -> None:
    s = build_schedule(OptimConfig(warmup_epochs=0.5), 256, 10, 2)
    assert s.warmup_steps == 5 and s(5) == pytest.approx(0.2)
    s0 = build_schedule(OptimConfig(warmup_epochs=0), 256, 10, 2)
    assert s0(0) == pytest.approx(0.2)


def test_warmup_longer_than_run_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"optim.warmup_epochs \(10.0\) must be within \[0, run.epochs = 5\]"):
        build_schedule(OptimConfig(), 256, 10, 5)
