"""ReduceLROnPlateau(..., restore_best_weights=True) in real Keras fits (issue 24).

The validation loss is scripted per epoch, so the test knows which epochs set
best and which cut; a callback listed after the plateau takes its own copies of
``model.get_weights()`` and ``optimizer.variables`` at each best epoch and checks
every cut against them.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from plateau import Decision  # noqa: E402
from plateau.adapters.keras import ReduceLROnPlateau  # noqa: E402

# Keras patience=1: every bad epoch cuts, every improvement is a new best.
SCRIPT = [1.0, 0.9, 0.95, 0.8, 0.85, 0.87, 0.7, 0.75, 0.6, 0.65, 0.66, 0.5]
BEST = [0, 1, 3, 6, 8, 11]
CUTS = {2: 1, 4: 3, 5: 3, 7: 6, 9: 8, 10: 8}  # cut epoch: the best epoch it restores
RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 4)).astype("float32")
Y = X @ RNG.normal(size=(4, 1)).astype("float32")


class Script(keras.callbacks.Callback):
    """Listed first: the epoch's scripted val_loss, and the weights the epoch trained to."""

    def __init__(self):
        super().__init__()
        self.trained = {}

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = SCRIPT[epoch]
        self.trained[epoch] = self.model.get_weights()


class Checker(keras.callbacks.Callback):
    """Listed after the plateau: its own copies at each best epoch, checked at each cut."""

    def __init__(self, plateau):
        super().__init__()
        self.plateau, self.copies, self.checked = plateau, {}, []

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        variables = {v.path: np.array(v) for v in optimizer.variables}
        decision = self.plateau.state.decision
        if decision is Decision.IMPROVED:
            self.copies[epoch] = (self.model.get_weights(), variables)
        if decision is not Decision.REDUCED:
            return
        weights, kept = self.copies[CUTS[epoch]]
        assert_equal(self.model.get_weights(), weights)
        lr, iteration = optimizer.learning_rate.path, optimizer.iterations.path
        assert variables.keys() == kept.keys()
        for path, value in variables.items():
            if path == lr:  # the cut's new lr applies
                assert value == np.float32(logs["learning_rate"] * 0.5)
            elif path == iteration:  # the run's progress goes on
                assert value == (epoch + 1) * len(X) // 8
            else:
                np.testing.assert_array_equal(value, kept[path], err_msg=path)
        self.checked.append(epoch)


def assert_equal(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def fit(optimizer, restore_best_weights=True):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer, loss="mse")
    plateau = ReduceLROnPlateau(
        patience=1, factor=0.5, min_delta=0.0, restore_best_weights=restore_best_weights
    )
    script, checker = Script(), Checker(plateau)
    history = model.fit(
        X,
        Y,
        epochs=len(SCRIPT),
        batch_size=8,
        shuffle=False,
        verbose=0,
        callbacks=[script, plateau, *([checker] if restore_best_weights else [])],
    )
    return plateau, script, checker, history.history


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(learning_rate=0.01),
    ],
    ids=["sgd_momentum", "adam"],
)
def test_each_cut_puts_back_the_best_epochs_weights_and_optimizer_variables(make_optimizer):
    plateau, script, checker, history = fit(make_optimizer())
    assert checker.checked == sorted(CUTS)  # every cut was checked against the test's copy
    assert sorted(checker.copies) == BEST
    for cut, best in CUTS.items():  # the epoch had trained away from the best weights
        assert not np.array_equal(script.trained[cut][0], script.trained[best][0])
    assert plateau.best_weights.best_epoch == 11
    assert plateau.best_weights.restored_at == 10
    # The lrs are the plateau's with or without the roll-back: only the weights differ.
    _, _, _, plain = fit(make_optimizer(), restore_best_weights=False)
    assert history["learning_rate"] == plain["learning_rate"]
    assert history["loss"] != plain["loss"]


def test_restore_best_weights_must_be_a_bool():
    with pytest.raises(TypeError, match="restore_best_weights"):
        ReduceLROnPlateau(restore_best_weights="yes")  # type: ignore[arg-type]
    assert ReduceLROnPlateau().best_weights is None
