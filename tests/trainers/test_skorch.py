"""skorch's LRScheduler callback with plateau's class as its policy, against torch's class.

skorch passes ``last_epoch`` to every policy that is not torch's class by identity,
and steps a plateau policy (recognised by ``isinstance``) with the monitored score
at the end of every epoch.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
skorch = pytest.importorskip("skorch")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from _compat import claim  # noqa: E402
from skorch.callbacks import LRScheduler  # noqa: E402

from plateau.adapters.torch import ReduceLROnPlateau  # noqa: E402

TorchPlateau = torch.optim.lr_scheduler.ReduceLROnPlateau

TRAINER = "skorch"
TESTED_WITH = "skorch==1.4.0"
NOTE = (
    "skorch saves no scheduler state: it builds a new scheduler at every fit(), under both classes"
)

EPOCHS = 14
KWARGS = {"patience": 1, "factor": 0.5, "threshold": 0.01}


def data():
    x, y = sklearn_datasets.load_diabetes(return_X_y=True)  # bundled with scikit-learn
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype("float32"), ((y - y.mean()) / y.std()).astype("float32").reshape(-1, 1)


def fit(policy, epochs=EPOCHS, net=None, **kwargs):
    """A seeded fit; the net's history holds the lr of every epoch (event_lr)."""
    if net is None:
        torch.manual_seed(0)
        scheduler = LRScheduler(
            policy=policy, monitor="valid_loss", event_name="event_lr", **kwargs
        )
        net = skorch.NeuralNetRegressor(
            torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)),
            max_epochs=epochs,
            lr=0.5,
            batch_size=64,
            optimizer=torch.optim.SGD,
            callbacks=[("plateau", scheduler)],
            train_split=skorch.dataset.ValidSplit(4),
            verbose=0,
        )
    x, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no repeated-step warning, nothing else
        net.partial_fit(x, y, epochs=epochs)
    return net


def lr_history(net):
    return list(net.history[:, "event_lr"]), list(net.history[:, "valid_loss"])


@claim("works", "history")
def test_skorch_policy_gives_torchs_lr_history():
    ours, theirs = fit(ReduceLROnPlateau, **KWARGS), fit(TorchPlateau, **KWARGS)
    assert lr_history(ours) == lr_history(theirs)
    lrs = lr_history(ours)[0]
    assert len(set(lrs)) >= 3  # not vacuous: the lr was cut at least twice
    scheduler = dict(ours.callbacks_)["plateau"].lr_scheduler_
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert scheduler.last_epoch == EPOCHS  # skorch passed last_epoch=-1: a new run
    assert scheduler.get_last_lr() == [ours.optimizer_.param_groups[0]["lr"]]


@claim("works", "history")
def test_skorch_continued_training_passes_last_epoch_as_for_torchs_other_schedulers():
    """partial_fit again: skorch builds a new scheduler with last_epoch=len(history) - 1."""
    ours = fit(ReduceLROnPlateau, epochs=6, **KWARGS)
    theirs = fit(TorchPlateau, epochs=6, **KWARGS)
    fit(None, epochs=6, net=ours)
    fit(None, epochs=6, net=theirs)
    assert lr_history(ours) == lr_history(theirs)
    assert len(set(lr_history(ours)[0])) >= 2
    # Torch's class counts from 0 again (skorch passes it nothing); ours from skorch's count.
    assert dict(ours.callbacks_)["plateau"].lr_scheduler_.last_epoch == 12
    assert dict(theirs.callbacks_)["plateau"].lr_scheduler_.last_epoch == 6
