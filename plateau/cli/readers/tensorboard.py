"""TensorBoard event files, read with the standard library.

An event file (``events.out.tfevents.*``) is a sequence of TFRecords -- a
little-endian uint64 length, its masked CRC-32C, the data, the data's masked
CRC-32C -- each holding one ``Event`` protocol buffer. Only the few fields a
scalar needs are decoded (field numbers from TensorFlow's ``event.proto``,
``summary.proto`` and ``tensor.proto``)::

    Event:        2 step (varint)      5 summary (Summary)
    Summary:      1 value (repeated Value)
    Value:        1 tag (string)       2 simple_value (float32)
                  8 tensor (Tensor)    9 metadata (1 plugin_data: 1 plugin_name)
    Tensor:       1 dtype  2 shape  4 tensor_content  5 float_val  6 double_val
                  7 int_val  10 int64_val  13 half_val

A scalar is a ``simple_value`` (torch's ``SummaryWriter.add_scalar``,
tensorboardX, TF1) or a one-element numeric tensor (``tf.summary.scalar`` in
TF2, ``add_scalar(..., new_style=True)``); a tensor of another plugin (text,
histograms, images) is not. Each tag is one series; the epoch shown is the
event's step. Every CRC is checked, so a damaged file is an error, not wrong
numbers.

Example:
    >>> crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    True
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterator

from ._metrics import LogError, MetricLog, choose, finish

HEADER = struct.Struct("<QI")
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)

# TensorFlow DataType -> (struct format of one tensor_content element, packed field).
_DTYPES = {1: ("<f", 5), 2: ("<d", 6), 3: ("<i", 7), 9: ("<q", 10), 19: ("<e", 13), 14: ("bf", 0)}


class EventError(ValueError):
    """A malformed event file; the message says where (record and byte offset)."""


def crc32c(data: bytes) -> int:
    """The CRC-32C of `data`."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C TFRecord stores."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def is_event_file(path: str, head: bytes) -> bool:
    """Whether `path` is an event file: by its name, or by a valid first record header."""
    if ".tfevents" in os.path.basename(path):
        return True
    if len(head) < HEADER.size:
        return False
    length, crc = HEADER.unpack_from(head)
    return bool(crc == masked_crc(head[:8]) and length < 1 << 40)


def records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(byte offset, data) of each TFRecord in `data`."""
    offset, size = 0, len(data)
    while offset < size:
        if offset + HEADER.size > size:
            raise EventError(f"byte {offset}: truncated record header")
        length, crc = HEADER.unpack_from(data, offset)
        if crc != masked_crc(data[offset : offset + 8]):
            raise EventError(f"byte {offset}: bad record length checksum")
        start = offset + HEADER.size
        end = start + length
        if end + 4 > size:
            raise EventError(f"byte {offset}: truncated record (is the run still writing?)")
        body = data[start:end]
        if struct.unpack_from("<I", data, end)[0] != masked_crc(body):
            raise EventError(f"byte {offset}: bad record data checksum")
        yield offset, body
        offset = end + 4


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise EventError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(field number, wire type, integer, bytes) of each field of a protocol buffer.

    A varint's value is the integer (bytes empty); any other field's is the bytes
    (fixed64, fixed32, or length-delimited), the integer 0.
    """
    pos, size = 0, len(data)
    while pos < size:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            integer, pos = _varint(data, pos)
            yield number, wire, integer, b""
            continue
        if wire in (1, 5):
            length = 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(data, pos)
        else:
            raise EventError(f"unsupported wire type {wire}")
        if pos + length > size:
            raise EventError("truncated field")
        yield number, wire, 0, data[pos : pos + length]
        pos += length


def _numbers(number: int, wire: int, integer: int, raw: bytes) -> list[float]:
    """The values of one repeated numeric tensor field (packed or not)."""
    if number == 5:  # float_val
        return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))
    if number == 6:  # double_val
        return list(struct.unpack(f"<{len(raw) // 8}d", raw[: len(raw) // 8 * 8]))
    ints = _packed_varints(raw) if wire == 2 else [integer]
    if number == 13:  # half_val: the bits of a float16 in an int32
        return [struct.unpack("<e", struct.pack("<H", i & 0xFFFF))[0] for i in ints]
    return [float(i - (1 << 64) if i >= 1 << 63 else i) for i in ints]  # int32, int64


def _tensor_scalar(data: bytes) -> float | None:
    """The number held by a one-element numeric tensor, else None."""
    dtype, content = 0, b""
    values: list[float] = []
    repeated = []
    for number, wire, integer, raw in fields(data):
        if number == 1 and wire == 0:
            dtype = integer
        elif number == 4 and wire == 2:
            content = raw
        elif number in (5, 6, 7, 10, 13):
            repeated.append((number, wire, integer, raw))
    if dtype not in _DTYPES:
        return None
    form, field_number = _DTYPES[dtype]
    if content:
        if form == "bf":  # bfloat16: the top half of a float32
            return struct.unpack("<f", b"\0\0" + content)[0] if len(content) == 2 else None
        fits = len(content) == struct.calcsize(form)
        return float(struct.unpack(form, content)[0]) if fits else None
    for number, wire, integer, raw in repeated:
        if number == field_number:
            values += _numbers(number, wire, integer, raw)
    return values[0] if len(values) == 1 else None


def _packed_varints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def scalars(data: bytes, plugins: dict[str, str]) -> Iterator[tuple[int, int, str, float]]:
    """(record offset, step, tag, value) of every scalar in an event file's bytes.

    `plugins` maps each tag to the plugin its metadata named, across the files of
    one run (TensorFlow writes the metadata on a tag's first event only).

    Raises:
        EventError: a damaged record or message.
    """
    for offset, record in records(data):
        try:
            step, summary = 0, b""
            for number, wire, integer, raw in fields(record):
                if number == 2 and wire == 0:
                    step = integer - (1 << 64) if integer >= 1 << 63 else integer
                elif number == 5 and wire == 2:
                    summary = raw
            for number, wire, _, raw in fields(summary):
                if number == 1 and wire == 2:
                    found = _value(raw, plugins)
                    if found is not None:
                        yield offset, step, found[0], found[1]
        except (EventError, struct.error, UnicodeDecodeError) as exc:
            raise EventError(f"byte {offset}: malformed event: {exc}") from None


def _value(data: bytes, plugins: dict[str, str]) -> tuple[str, float] | None:
    tag, plugin = "", None
    simple: float | None = None
    tensor: bytes | None = None
    for number, wire, _, raw in fields(data):
        if number == 1 and wire == 2:
            tag = raw.decode("utf-8")
        elif number == 2 and wire == 5:
            simple = struct.unpack("<f", raw)[0]
        elif number == 8 and wire == 2:
            tensor = raw
        elif number == 9 and wire == 2:  # metadata.plugin_data.plugin_name
            for n, w, _, plugin_data in fields(raw):
                if n == 1 and w == 2:
                    for pn, pw, _, name in fields(plugin_data):
                        if pn == 1 and pw == 2:
                            plugin = name.decode("utf-8")
    if plugin is not None:
        plugins[tag] = plugin
    if simple is not None:
        return tag, simple
    if tensor is not None and plugins.get(tag, "scalars") == "scalars":
        scalar = _tensor_scalar(tensor)
        return None if scalar is None else (tag, scalar)
    return None


def event_files(path: str) -> list[str]:
    """The event files under directory `path`, at any depth, in path order."""
    found = [
        os.path.join(root, name)
        for root, _, names in os.walk(path)
        for name in names
        if ".tfevents" in name
    ]
    return sorted(found)


def read_tensorboard(
    path: str, files: list[str], column: str | None = None, *, data: bytes | None = None
) -> MetricLog:
    """Read one tag's scalars from event `files` (an event file, or those of directory `path`).

    `data`, when given, is the content of the one file in `files` (piped in).

    The files of one directory are one run, read in name order (the name holds
    the time the writer started). With files in several directories, each tag is
    named ``DIR/TAG`` by its directory under `path`.

    Raises:
        LogError: a damaged file, or no single tag to replay.
    """
    directories = {os.path.dirname(file) for file in files}
    series: dict[str, tuple[array[float], array[int], list[str]]] = {}
    plugins: dict[str, dict[str, str]] = {}
    for file in files:
        directory = os.path.dirname(file)
        prefix = ""
        if len(directories) > 1:
            prefix = os.path.relpath(directory, path).replace(os.sep, "/") + "/"
        content = data
        if content is None:
            try:
                with open(file, "rb") as handle:
                    content = handle.read()
            except OSError as exc:
                raise LogError(f"{file}: cannot read: {exc.strerror or exc}") from None
        name = os.path.basename(file)
        try:
            for offset, step, tag, value in scalars(content, plugins.setdefault(directory, {})):
                values, steps, where = series.setdefault(prefix + tag, (array("d"), array("q"), []))
                values.append(value)
                steps.append(step)
                where.append(f"{name}, byte {offset} (step {step})")
        except EventError as exc:
            raise LogError(f"{file}, {exc}") from None
    if not series:
        raise LogError(f"{path}: no scalars in {len(files)} event file(s)")
    tags = list(series)
    chosen = choose(path, tags, lambda _: True, lambda _: True, column, kind="tag")
    values, steps, where = series[chosen]
    return finish(path, chosen, tags, values, steps, len(values), where.__getitem__)
