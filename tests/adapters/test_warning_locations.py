"""Every warning the adapters give points at the line that caused it.

The warnings are raised inside plateau, a frame or more below the call the user
made; each must name that call's line, not one inside plateau, whatever the
folders plateau and the tests sit in. Torch's are checked against this file, where
the call is; Keras's against Keras's own callback, given the same missing metric
in the same fit: both must name the same line of Keras's callback loop.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

import plateau


def _only_warning(caught: list[warnings.WarningMessage], match: str) -> warnings.WarningMessage:
    found = [w for w in caught if match in str(w.message)]
    assert len(found) == 1, [str(w.message) for w in caught]
    return found[0]


@pytest.fixture
def torch_setup():
    torch = pytest.importorskip("torch")
    from plateau.adapters.torch import ReduceLROnPlateau

    def make(**kwargs):
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=0.1)
        return optimizer, ReduceLROnPlateau(optimizer, patience=0, **kwargs)

    return torch, make


def _step_optimizer(optimizer):
    optimizer.zero_grad()
    optimizer.step()


@pytest.mark.parametrize("base", [None, "lambda"])
def test_torch_repeat_and_epoch_warnings_name_the_callers_line(torch_setup, base):
    _, make = torch_setup
    kwargs = {} if base is None else {"base": lambda epoch: 1.0}
    optimizer, scheduler = make(**kwargs)
    _step_optimizer(optimizer)
    scheduler.step(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repeat_line = _next_line()
        scheduler.step(1.0)
        _step_optimizer(optimizer)
        epoch_line = _next_line()
        scheduler.step(1.0, epoch=5)
    for match, line in (("called again", repeat_line), ("epoch argument", epoch_line)):
        warning = _only_warning(caught, match)
        assert (warning.filename, warning.lineno) == (__file__, line)


@pytest.mark.parametrize("with_metric", [False, True])
def test_torch_overwritten_lr_warning_names_the_callers_line(torch_setup, with_metric):
    _, make = torch_setup
    optimizer, scheduler = make(base=lambda epoch: 0.5**epoch)
    optimizer.param_groups[0]["lr"] = 0.123
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if with_metric:
            line = _next_line()
            scheduler.step(1.0)
        else:
            line = _next_line()
            scheduler.step()
    warning = _only_warning(caught, "was set to 0.123")
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_keras_missing_monitor_warning_names_the_same_line_as_keras():
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    from plateau.adapters.keras import ReduceLROnPlateau

    def warning_of(callback):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = np.zeros((4, 2), dtype="float32")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[callback])
        return _only_warning(caught, "`val_nope` which is not available")

    theirs = warning_of(keras.callbacks.ReduceLROnPlateau(monitor="val_nope", mode="min"))
    ours = warning_of(ReduceLROnPlateau(monitor="val_nope", mode="min"))
    assert (ours.filename, ours.lineno) == (theirs.filename, theirs.lineno)
    where = Path(ours.filename).resolve()  # Keras's loop, wherever the checkout is
    assert where.is_relative_to(Path(keras.__file__).parent.resolve())
    assert not where.is_relative_to(Path(plateau.__file__).parent.resolve())


def _next_line() -> int:
    """The number of the line after the caller's: the call whose warning is checked."""
    return sys._getframe(1).f_lineno + 1
