"""The optax adapter's framework-free decisions: which lrs are driven, and its refusals.

Runs without jax (the no-framework venv); the adapter's own tests check the same
rules on real optax states.
"""

from __future__ import annotations

import pytest

from plateau import PlateauConfig
from plateau._optax_format import check_count, check_init_config, check_settable, driven, name


def test_plateau_scales_are_driven_and_a_scheduled_lr_is_left_to_its_schedule():
    found = [("[0]", "scheduled"), ("[1]", "scale"), ("[2].inner_state", "scheduled")]
    assert driven(found, "tuple") == [1]
    assert driven([("[0]", "scale"), ("[1]", "scale")], "tuple") == [0, 1]


def test_without_a_scale_every_injected_lr_is_driven_in_order():
    found = [("[0]", "constant"), ("[1]", "scheduled"), ("[2]", "constant")]
    assert driven(found, "tuple") == [0, 1, 2]


def test_nothing_found_is_empty_for_lr_paths_and_an_error_naming_the_type_otherwise():
    assert driven([], None) == []
    with pytest.raises(TypeError) as info:
        driven([], "ScaleByAdamState")
    message = str(info.value)
    assert message.startswith("opt_state (ScaleByAdamState) holds no injectable learning rate")
    assert "wrap the optimizer with optax.inject_hyperparams" in message
    assert "plateau_optax.scale_by_plateau()" in message


def test_a_scale_next_to_a_constant_lr_is_ambiguous_naming_the_first_of_each():
    found = [("[0]", "scheduled"), ("[1]", "constant"), ("[2]", "scale"), ("[3]", "constant")]
    match = (
        r"plateau scale \(at opt_state\[2\]\) and a constant injected learning rate "
        r"\(at opt_state\[1\]\), which is ambiguous"
    )
    with pytest.raises(TypeError, match=match):
        driven(found, "tuple")


def test_name_says_which_kind_and_where():
    assert name("[1]", "scale") == "the plateau scale at opt_state[1]"
    assert name("", "constant") == name("", "scheduled") == "the learning rate at opt_state"


def test_a_scheduled_lr_cannot_be_set_and_is_reported_before_a_wrong_array_count():
    assert check_settable([("[0]", "constant"), ("[1]", "scale")], [1, 1]) is None
    found = [("[0]", "constant"), ("[1]", "scheduled")]
    match = r"learning rate at opt_state\[1\] is driven by a schedule.*scale_by_plateau\(\)"
    with pytest.raises(TypeError, match=match):
        check_settable(found, [2, 1])


@pytest.mark.parametrize("count", [0, 2])
def test_an_lr_that_is_not_one_array_cannot_be_set(count):
    with pytest.raises(
        TypeError, match=rf"plateau scale at opt_state\[3\] holds {count} arrays; it must be"
    ):
        check_settable([("[0]", "constant"), ("[3]", "scale")], [1, count])


def test_a_wrong_count_of_lrs_names_both_counts_the_kind_and_every_path():
    found = [("[0]", "constant"), ("[1].inner_state", "constant")]
    assert check_count(2, found) is None
    match = (
        r"^'lrs' has 3 values but opt_state holds 2 learning rates "
        r"\(at opt_state\[0\], opt_state\[1\]\.inner_state\)$"
    )
    with pytest.raises(ValueError, match=match):
        check_count(3, found)
    with pytest.raises(ValueError, match=r"holds 1 plateau scales \(at opt_state\[1\]\)$"):
        check_count(2, [("[1]", "scale")])


def test_init_refuses_a_warmup_config_naming_start_and_leaves_other_configs_alone():
    config = PlateauConfig(warmup_epochs=3, warmup_start_factor=0.25)
    match = (
        r"'config' has warmup_epochs=3: the first epoch must train at lr \* "
        r"warmup_start_factor \(0\.25\).*plateau_optax\.start\(opt_state, config\)"
    )
    with pytest.raises(ValueError, match=match):
        check_init_config(config)
    assert check_init_config(PlateauConfig()) is None
    # Not a config at all: plateau.init names it, with its own TypeError.
    assert check_init_config({"warmup_epochs": 3}) is None
