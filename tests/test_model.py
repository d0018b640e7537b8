from dataclasses import asdict

import pytest
import torch
from torch import nn

from digitrec.errors import ConfigError
from digitrec.training.augment import augment_batch
from digitrec.training.config import PRESETS, AugmentConfig, ModelConfig, preset
from digitrec.training.nets import ARCHITECTURES, build_model, count_parameters, input_size


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_model_returning_logits(name):
    cfg = preset(name).model
    model = build_model(cfg).eval()
    x = torch.rand(5, 1, *input_size(cfg))
    with torch.no_grad():
        out = model(x)
    # digits: ten logits each; the pair reader: ten for the left digit, ten for the right
    assert out.shape == ((5, 2, 10) if name == "pairs" else (5, 10))
    # logits, not probabilities: no softmax inside the model
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))


def test_seed_preset_is_the_original_design():
    cfg = preset("seed")
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("adam", 1e-3, 64, 50)
    assert cfg.schedule == "constant" and not cfg.augment.enabled
    layers = [m for m in build_model(cfg.model).modules() if not isinstance(m, nn.Sequential)]
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert sum(isinstance(m, nn.MaxPool2d) for m in layers) == 1
    assert sum(isinstance(m, nn.Dropout) for m in layers) == 2
    dense = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(12 * 12 * 64, 128), (128, 10)]
    assert not any(isinstance(m, nn.LogSoftmax | nn.Softmax) for m in layers)


def test_default_preset_is_stronger_than_seed():
    best = preset("best")
    assert best.augment.enabled and best.schedule == "onecycle"
    assert any(isinstance(m, nn.BatchNorm2d) for m in build_model(best.model).modules())


def test_unknown_preset_and_architecture_are_refused():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*seed"):
        preset("huge")
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model(ModelConfig(arch="transformer"))


def test_preset_overrides_apply_and_none_keeps_default():
    cfg = preset("seed", epochs=3, batch_size=None)
    assert cfg.epochs == 3 and cfg.batch_size == 64


@pytest.mark.parametrize("arch", sorted(set(ARCHITECTURES) - {"pairs"}))
@pytest.mark.parametrize("width", [8, 16, 32])
def test_digit_architectures_read_28x28_at_any_width(arch, width):
    cfg = ModelConfig(arch=arch, width=width, hidden=32)
    assert input_size(cfg) == (28, 28)
    assert build_model(cfg).eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_deep_net_has_seven_convolutions_and_a_third_of_a_million_parameters():
    model = build_model(ModelConfig(arch="deep", width=32))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and [c.stride[0] for c in convs].count(2) == 2
    assert 300_000 < count_parameters(model) < 350_000


def test_count_parameters_matches_torch():
    model = build_model(ModelConfig(arch="bncnn", width=8, hidden=32))
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 1000


def test_augmentation_is_repeatable_in_range_and_changes_pictures():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    cfg = AugmentConfig()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    c = augment_batch(x, cfg, torch.Generator().manual_seed(4))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1.0001
    assert (a - x).abs().sum() > 1
    # the ink stays roughly the same amount: distortions, not erasure
    ratio = a.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.3) & (ratio < 3.0)).all()
    assert torch.equal(augment_batch(x, AugmentConfig(enabled=False), torch.Generator()), x)


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ("bncnn", "not a table"),
        ({"arch": "bncnn", "depth": 3}, "unknown model settings 'depth'"),
        ({"width": 200_000}, "width 200000"),
        ({"width": 0}, "width 0"),
        ({"width": 16.5}, "width 16.5"),
        ({"width": True}, "width True"),
        ({"hidden": -1}, "hidden -1"),
        ({"hidden": "many"}, "hidden 'many'"),
        ({"dropout": 1.0}, "dropout 1.0"),
        ({"dropout": float("nan")}, "dropout nan"),
        ({"members": 0}, "at least one member"),
        ({"members": 65}, "members 65"),
        ({"arch": 7}, "arch 7"),
        ({"arch": "ensemble", "parts": "bncnn"}, "parts"),
        ({"arch": "ensemble", "parts": [{}] * 65}, "parts"),
        ({"arch": "ensemble", "parts": [{"parts": [{}, {}]}, {}]}, "parts"),
        ({"arch": "ensemble", "parts": [{"members": 40}, {"members": 40}]}, "80 nets"),
    ],
)
def test_model_settings_out_of_any_sane_range_are_refused(settings, fragment):
    # a card's settings come with a file anyone can hand us: they are checked before a net
    # is built, as building one of width 200,000 would take terabytes
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict(settings)
    assert fragment in str(info.value)


def test_every_preset_and_every_setting_a_card_stores_pass_the_checks():
    for name in PRESETS:
        cfg = preset(name).model
        assert ModelConfig.from_dict(asdict(cfg)) == cfg


def test_a_planned_net_costs_nothing_however_large():
    from digitrec.training.nets import planned_tensors

    cfg = ModelConfig("bncnn", width=1024, hidden=16384, members=64)
    shapes, parameters = planned_tensors(cfg)  # 438 GB of weights were it built
    assert parameters > 10**11 and shapes["members.0.1.weight"] == (1024, 1, 3, 3)
    small = ModelConfig("quick", width=4, hidden=8)
    shapes, parameters = planned_tensors(small)
    model = build_model(small)
    assert parameters == count_parameters(model)
    assert shapes == {k: tuple(v.shape) for k, v in model.state_dict().items()}
