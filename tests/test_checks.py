"""The shared number checks (midlevel.checks) and the layers that read settings through them."""
import math

import numpy as np
import pytest
import yaml

from midlevel.checks import real_number, whole_number
from midlevel.errors import ArgumentError, SpecError, TrainingError


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), ("3", 3), (" 12 ", 12),
                                             ("1e3", 1000), (np.int64(4), 4), (np.float32(2), 2)])
def test_whole_numbers_in_any_spelling_are_read_as_ints(value, expected):
    got = whole_number(value, "n")
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value", [True, False, 2.5, "2.5", "abc", "", None, math.nan,
                                   math.inf, "inf", -1, 0, [3]])
def test_anything_but_a_whole_number_at_least_one_is_refused_by_name(value):
    with pytest.raises(ArgumentError, match=r"^n_steps must be a whole number >= 1, got"):
        whole_number(value, "n_steps")


def test_a_pair_of_whole_numbers_and_what_is_not_one():
    assert whole_number([8, "16"], "window", size=2) == (8, 16)
    for bad in ([8], [8, 16, 2], "33", 5, [8, 0], [8, 1.5]):
        with pytest.raises(ArgumentError, match="window must be 2 whole numbers >= 1"):
            whole_number(bad, "window", size=2)


@pytest.mark.parametrize("value, expected", [(0.5, 0.5), ("1e-3", 1e-3), (2, 2.0),
                                             (np.float32(0.25), 0.25), ("  .5", 0.5)])
def test_real_numbers_in_any_spelling_are_read_as_floats(value, expected):
    got = real_number(value, "lr", above=0)
    assert got == pytest.approx(expected) and type(got) is float


@pytest.mark.parametrize("value", [0, -1e-9, math.nan, "nan", math.inf, "inf", "-inf", True,
                                   "abc", None])
def test_a_real_number_outside_its_bounds_or_not_a_number_is_refused(value):
    with pytest.raises(ArgumentError, match=r"^lr must be a finite number > 0, got"):
        real_number(value, "lr", above=0)


def test_every_bound_is_kept_and_named():
    assert real_number(1, "w", least=0, most=1) == 1.0
    assert real_number(0, "w", least=0, most=1) == 0.0
    with pytest.raises(ArgumentError, match=r"must be a finite number >= 0 and <= 1, got 1.5"):
        real_number(1.5, "w", least=0, most=1)
    with pytest.raises(ArgumentError, match=r"> 0 and < 1, got 1"):
        real_number(1, "alpha", above=0, below=1)
    with pytest.raises(ArgumentError, match=r"hop must be a finite number of seconds > 0"):
        real_number(0, "hop", above=0, unit="seconds")


def test_none_passes_only_where_allowed_and_the_callers_error_class_is_raised():
    assert real_number(None, "x", allow_none=True) is None
    assert whole_number(None, "x", allow_none=True) is None
    with pytest.raises(TrainingError, match="epochs"):
        whole_number(0, "epochs", error=TrainingError)
    with pytest.raises(ArgumentError, match=r"^must be a whole number"):  # argparse names it
        whole_number("0")


def test_a_yaml_config_with_exponent_numbers_trains_with_those_numbers():
    """YAML 1.1 leaves 1e-3 a string; the config reads it as the number, not an error."""
    from midlevel.training.config import TrainConfig
    values = yaml.safe_load("lr: 1e-3\nweight_decay: 1e-5\nepochs: 3.0\nw: 1\n")
    assert values["lr"] == "1e-3"  # what PyYAML gives
    config = TrainConfig.from_dict(values)
    config.check()
    assert (config.lr, config.weight_decay, config.epochs, config.w) == (1e-3, 1e-5, 3, 1.0)
    assert type(config.epochs) is int and type(config.lr) is float
    for key, value in (("lr", "1e-3x"), ("epochs", 2.5), ("workers", -1), ("w", 1.01)):
        with pytest.raises(TrainingError, match=f"^{key} must be"):
            TrainConfig.from_dict({key: value}).check()


def test_a_spec_split_written_as_text_or_out_of_range_is_read_or_named(tmp_path):
    from midlevel.data.spec import load_spec

    def spec(splits: str):
        path = tmp_path / "spec.yaml"
        path.write_text("name: t\nroot: .\naudio: {pattern: 'audio/{id}.wav'}\n"
                        "tables: [{path: a.csv, id_column: id}]\n"
                        "concepts: {c: {scale: [1, 1e1]}}\n"
                        "targets: {y: {scale: [0, 10]}}\n" + splits)
        return load_spec(path)

    loaded = spec("splits: {seed: 3, test: {fraction: 2e-1}}\n")
    assert loaded.splits["test"].fraction == pytest.approx(0.2)
    assert loaded.concepts[0].scale == (1.0, 10.0)
    for splits, where in (("splits: {seed: -1, test: {size: 4}}\n", "splits.seed"),
                          ("splits: {test: {size: 0}}\n", "splits.test.size"),
                          ("splits: {test: {fraction: 1}}\n", "splits.test.fraction")):
        with pytest.raises(SpecError, match=f"spec.yaml: '{where}' must be"):
            spec(splits)


def test_synth_refuses_a_bad_setting_before_it_touches_the_folder(tmp_path):
    from midlevel.synth.dataset import synthesize
    for key, value in (("tag_presence", 1.5), ("n_clips", 0), ("duration", "nan"),
                       ("rating_noise", -0.1)):
        with pytest.raises(ArgumentError, match=f"^{key} must be"):
            synthesize(tmp_path / key, progress=False, **{"n_clips": 2, "duration": 1.0,
                                                          key: value})
        assert not (tmp_path / key).exists()


@pytest.mark.parametrize("options, name", [({"lime_samples": 0}, "lime_samples"),
                                           ({"kernel_width": 0}, "kernel_width"),
                                           ({"n_repeats": 1.5}, "n_repeats"),
                                           ({"alpha": -1}, "alpha"),
                                           ({"batch_size": "many"}, "batch_size"),
                                           ({"seed": -3}, "seed")])
def test_lime_settings_are_refused_by_name_when_the_method_is_made(options, name):
    from midlevel.errors import AttributionError
    from midlevel.explain.attribution.lime import LimeSegments
    with pytest.raises(AttributionError, match=name):
        LimeSegments(**options)


def test_a_training_config_with_a_key_given_twice_is_refused_naming_it(tmp_path):
    from midlevel.training.from_spec import _config_dict
    path = tmp_path / "config.yaml"
    path.write_text("lr: 1e-3\nepochs: 5\nlr: 1e-2\n")
    with pytest.raises(TrainingError, match=r"'lr' is given twice .* lines 1 and 3"):
        _config_dict(str(path))
    path.write_text("lr: [1\n")
    with pytest.raises(TrainingError, match="not valid YAML"):
        _config_dict(str(path))
