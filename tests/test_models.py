"""Backbone and models: sizes, named forward steps, hook-friendly modules, batch consistency."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from midlevel.errors import TrainingError
from midlevel.models import BlackBox, ConceptBottleneck, ModelOutput, build_model, preset

TARGETS = [{"name": "t0"}, {"name": "mood", "kind": "class", "classes": ["a", "b", "c"]}]
TINY = {"width": 0.125, "last_kernel": 3, "dropout": 0.3}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_preset_has_about_five_million_parameters():
    model = build_model("bottleneck", [f"c{i}" for i in range(7)], [{"name": f"e{i}"} for i in range(8)],
                        preset("paper"))
    assert 4.5e6 < n_params(model) < 5.5e6
    small = build_model("bottleneck", ["c"], [{"name": "e"}], preset("small"))
    assert n_params(small) < n_params(model) / 10


def test_unknown_preset_is_a_training_error():
    with pytest.raises(TrainingError, match="presets are"):
        preset("huge")


def test_every_nonlinearity_and_pool_is_a_module_and_not_inplace():
    model = ConceptBottleneck(["a", "b"], TARGETS, backbone=TINY)
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Dropout, nn.AdaptiveAvgPool2d,
               nn.Flatten, nn.Linear, nn.Sequential)
    leaves = [m for m in model.modules() if not list(m.children())]
    assert all(isinstance(m, allowed) or type(m).__name__ == "Standardize" for m in leaves)
    assert all(not getattr(m, "inplace", False) for m in model.modules())
    assert sum(isinstance(m, nn.ReLU) for m in leaves) == 9  # one per conv


def test_bottleneck_forward_is_its_named_steps():
    torch.manual_seed(0)
    model = ConceptBottleneck(["a", "b"], TARGETS, backbone=TINY).eval()
    x = torch.randn(3, 1, 40, 32)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.concepts.shape == (3, 2) and out.targets.shape == (3, 4)  # 1 + 3 class logits
    assert model.output_names == ["t0", "mood=a", "mood=b", "mood=c"]
    c = model.concepts(model.features(x))
    torch.testing.assert_close(out.concepts, c)
    torch.testing.assert_close(out.targets, model.head(c))


def test_blackbox_has_no_concepts():
    model = BlackBox([{"name": "t0"}], backbone=TINY).eval()
    out = model(torch.randn(2, 1, 40, 32))
    assert out.concepts is None and out.targets.shape == (2, 1)


def test_batched_equals_one_by_one_in_eval_mode():
    torch.manual_seed(0)
    model = ConceptBottleneck(["a"], [{"name": "t"}], backbone=TINY).eval()
    x = torch.randn(4, 1, 40, 32)
    batched = model(x).targets
    single = torch.cat([model(x[i:i + 1]).targets for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_standardization_and_unscaling_use_the_stored_statistics():
    model = ConceptBottleneck(["a"], [{"name": "t"}], backbone=TINY).eval()
    model.set_scales(input_mean=2.0, input_std=4.0, concept_mean=[5.0], concept_std=[2.0],
                     target_mean=[1.0], target_std=[3.0])
    x = torch.randn(2, 1, 40, 32)
    torch.testing.assert_close(model.normalize(x), (x - 2.0) / 4.0)
    out = model.unscale(ModelOutput(torch.tensor([[1.0]]), torch.tensor([[-1.0]])))
    assert out.concepts.item() == 7.0 and out.targets.item() == -2.0


def _conv_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_place_on_cpu_is_channels_last_with_the_same_outputs_and_state():
    from midlevel.models import place
    torch.manual_seed(0)
    plain = build_model("bottleneck", ["a", "b"], [{"name": "y"}], preset("small")).eval()
    placed = build_model("bottleneck", ["a", "b"], [{"name": "y"}], preset("small")).eval()
    placed.load_state_dict(plain.state_dict())
    assert place(placed, "cpu") is placed
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(placed))
    # with one input channel both layouts coincide; every other conv really changed layout
    assert all(not w.is_contiguous() for w in _conv_weights(placed) if w.shape[1] > 1)
    assert all(w.is_contiguous() for w in _conv_weights(plain))
    x = torch.randn(3, 1, 40, 60)
    with torch.no_grad():
        a, b = plain(x), placed(x)
    torch.testing.assert_close(b.concepts, a.concepts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.targets, a.targets, atol=1e-5, rtol=1e-5)
    # checkpoints cross layouts both ways, values unchanged
    again = build_model("bottleneck", ["a", "b"], [{"name": "y"}], preset("small"))
    again.load_state_dict(placed.state_dict())
    for k, v in plain.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
