"""plateau: a framework-agnostic, pure-Python ReduceLROnPlateau with torch's exact semantics.

The core is an immutable :class:`PlateauState` and a pure :func:`step`::

    >>> import plateau
    >>> config = plateau.PlateauConfig(patience=1, factor=0.5)
    >>> state = plateau.init(0.1, config)
    >>> for loss in [1.0, 0.9, 0.95, 0.92]:
    ...     state, lrs = plateau.step(state, loss, config)
    >>> lrs, state.decision.value
    ((0.05,), 'reduced')

Framework adapters live in ``plateau.adapters.{torch,keras,optax}``; importing
``plateau`` never imports them or their frameworks.
"""

from __future__ import annotations

from ._base import scale_base
from ._config import PlateauConfig
from ._core import Decision, PlateauState, changed, init, simulate, step
from ._log import log_dict

__all__ = [
    "Decision",
    "PlateauConfig",
    "PlateauState",
    "changed",
    "init",
    "log_dict",
    "scale_base",
    "simulate",
    "step",
]
__version__ = "0.1.0"
