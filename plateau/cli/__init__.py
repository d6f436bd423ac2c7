"""The ``plateau`` command line: replay a trainer's metric log through the schedule.

``plateau simulate LOG`` reads one metric per epoch from a log the trainer already
wrote (see :mod:`plateau.cli.readers` for the formats it reads), runs the
schedule on it and prints, per epoch, the metric, the state and the learning rate
the schedule would have set. ``--compare`` replays the same log under other
configs side by side; ``--plot`` draws it (needs matplotlib).

One module per job:

- :mod:`.command`: the arguments and the command (:func:`main` is the console script);
- :mod:`.options`: the schedule options, derived from PlateauConfig's fields;
- :mod:`.readers`: the log readers, one module per format family;
- :mod:`.replay`: the configs stepped through the log in lockstep;
- :mod:`.output`: the table, CSV and JSON;
- :mod:`.plot`: ``--plot`` (the only module that imports matplotlib).

Only the standard library and the core are imported, unless ``--plot`` is given.
"""

from __future__ import annotations

from .command import build_parser, main

__all__ = ["build_parser", "main"]
