"""TensorBoard event files, read with the ``tensorboard`` package's own reader.

Only scalars are kept: a ``simple_value`` or a one-element tensor of no plugin but
``scalars`` (TF2). The library stops silently at a damaged record: what it read is
counted, so a file that ends early is warned about, naming the byte.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ._metrics import Columns, LogError

EXTRA = "plateau-lr[tensorboard]"
_RECORD_FRAME = 16  # a TFRecord's length (8 bytes), its CRC (4) and the data's CRC (4)


def is_event_file(name: str) -> bool:
    """Whether a file's name is an event file's (``events.out.tfevents.*``)."""
    return ".tfevents." in os.path.basename(name)


def read_events(source: str, files: Sequence[str], column: str | None) -> Columns:
    """Every scalar of `files` (one run), by tag, to choose from; LogError if unreadable."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.util.tensor_util import make_ndarray
    except ImportError:
        raise LogError(f"{source}: reading TensorBoard event files needs '{EXTRA}'") from None
    series = Columns(source, "event {}", column, index_columns=())
    other_tags: set[str] = set()  # TF2 writes a tag's plugin only on its first event
    count = 0
    for path in files:
        read = 0
        try:
            for record in RawEventFileLoader(path).Load():
                read += len(record) + _RECORD_FRAME
                count += 1
                event = Event.FromString(record)
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name not in ("", "scalars"):
                        other_tags.add(value.tag)  # text, histograms, images
                    if value.HasField("simple_value"):
                        metric: object = value.simple_value
                    elif value.tag not in other_tags and value.HasField("tensor"):
                        array = make_ndarray(value.tensor)
                        if array.size != 1:
                            continue
                        metric = array.item()
                    else:
                        continue
                    if column is None or value.tag in (column, "epoch"):
                        series.add(value.tag, metric, event.step, count)
                    else:
                        series.seen(value.tag)
            size = os.path.getsize(path)
        except OSError as exc:
            raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if read < size:
            series.warnings.append(
                f"{path}, byte {read}: a truncated or damaged record (a run still writing?); "
                f"the events before it are replayed, the {size - read} bytes after it are not"
            )
    return series
