"""Hypothesis strategies for `tf.train.Example` encodings, valid and malformed, written with a
protobuf writer of its own (protobuf's serializer never emits most of these layouts)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import strategies as st

KINDS = (1, 2, 3)  # bytes_list, float_list, int64_list: the oneof's field numbers
NAMES = ("x", "label", "s", "é")
OTHER_NAMES = ("other", "xx", "", "ü", "label2")


@dataclass(frozen=True)
class Wanted:
    name: str
    kind: int
    width: int


def varint(value: int, pad: int = 0) -> bytes:
    """`value` (mod 2**64) as a varint, with `pad` more bytes than needed (non-minimal)."""
    value &= (1 << 64) - 1
    groups = []
    while True:
        groups.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    groups += [0] * pad
    return bytes(g | 0x80 for g in groups[:-1]) + bytes(groups[-1:])


def tag(field: int, wire: int, pad: int = 0) -> bytes:
    return varint(field << 3 | wire, pad)


def delimited(field: int, payload: bytes, pad: int = 0) -> bytes:
    return tag(field, 2) + varint(len(payload), pad) + payload


pads = st.sampled_from([0] * 8 + [1, 3])
"""Mostly minimal varints, sometimes longer ones (still valid up to 10 bytes)."""


@st.composite
def unknown_field(draw: st.DrawFn, *, numbers: tuple[int, ...] = (4, 7, 15, 16, 2047,
                                                                    536870911)) -> bytes:
    """A field the schema does not know (or a known number with another wire type)."""
    number = draw(st.sampled_from(numbers))
    wire = draw(st.sampled_from([0, 1, 2, 5]))
    pad = min(draw(st.sampled_from([0, 0, 0, 1, 4])), 5 - len(tag(number, wire)))
    head = tag(number, wire, pad)  # a tag may take up to 5 bytes
    if wire == 0:
        return head + varint(draw(st.integers(0, 2**64 - 1)), draw(pads))
    if wire == 1:
        return head + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return head + draw(st.binary(min_size=4, max_size=4))
    payload = draw(st.binary(max_size=5))
    return head + varint(len(payload), draw(pads)) + payload


def _maybe_unknown(draw: st.DrawFn, numbers: tuple[int, ...] = (4, 7, 15, 536870911)) -> bytes:
    return draw(unknown_field(numbers=numbers)) if draw(st.integers(0, 9)) == 0 else b""


def values_of(kind: int, width: int) -> st.SearchStrategy[list[object]]:
    value: st.SearchStrategy[object]
    if kind == 1:
        value = st.binary(max_size=6)
    elif kind == 2:
        value = st.integers(0, 2**32 - 1)  # a float32's bits: NaNs, infinities, -0.0 too
    else:
        value = st.one_of(st.integers(-2**63, 2**63 - 1),
                          st.sampled_from([0, 1, 127, 128, -1, 2**63 - 1, -2**63]))
    return st.lists(value, min_size=width, max_size=width)


def _one(kind: int, value: object, pad: int) -> bytes:
    if kind == 1:
        return delimited(1, value, pad)  # type: ignore[arg-type]
    if kind == 2:
        return tag(1, 5, pad) + struct.pack("<I", value)
    return tag(1, 0, pad) + varint(value, pad)  # type: ignore[arg-type]


def _packed(kind: int, values: list[object], pad: int) -> bytes:
    if kind == 2:
        return delimited(1, struct.pack(f"<{len(values)}I", *values), pad)
    return delimited(1, b"".join(varint(v, pad) for v in values), pad)  # type: ignore[arg-type]


@st.composite
def list_message(draw: st.DrawFn, kind: int, values: list[object]) -> bytes:
    """A BytesList/FloatList/Int64List of `values`: chunks packed or not, unknown fields (a
    field 1 with another wire type among them) between them."""
    parts, i = [], 0
    while i < len(values):
        n = draw(st.integers(1, len(values) - i))
        chunk, i = values[i:i + n], i + n
        if kind != 1 and draw(st.booleans()):
            parts.append(_packed(kind, chunk, draw(pads)))
        else:
            parts.extend(_one(kind, v, draw(pads)) for v in chunk)
        numbers = (1, 4, 9) if draw(st.integers(0, 4)) == 0 else (4, 9)
        parts.append(_maybe_unknown(draw, numbers))
    if draw(st.integers(0, 9)) == 0:
        parts.append(_packed(kind, [], 0) if kind != 1 else b"")  # an empty packed run
    return b"".join(parts)


@st.composite
def feature_message(draw: st.DrawFn, kind: int, values: list[object]) -> bytes:
    """A Feature holding `values` as `kind`: sometimes after another kind that it replaces,
    sometimes split over two occurrences of its list (they merge)."""
    parts = [_maybe_unknown(draw)]
    if draw(st.integers(0, 5)) == 0:
        other = draw(st.sampled_from([k for k in KINDS if k != kind]))
        parts.append(delimited(other, draw(list_message(other, draw(values_of(other, 1))))))
    split = draw(st.integers(0, len(values))) if draw(st.integers(0, 4)) == 0 else len(values)
    parts.append(delimited(kind, draw(list_message(kind, values[:split])), draw(pads)))
    if split < len(values):
        parts.append(delimited(kind, draw(list_message(kind, values[split:]))))
    parts.append(_maybe_unknown(draw))
    return b"".join(parts)


@st.composite
def entry(draw: st.DrawFn, name: bytes, kind: int, width: int) -> bytes:
    """A map entry: key and value in either order, sometimes a key repeated (the last counts),
    the value split in two (they merge), unknown fields."""
    key = [delimited(1, name, draw(pads))]
    if draw(st.integers(0, 9)) == 0:
        key.insert(0, delimited(1, draw(st.sampled_from(OTHER_NAMES)).encode()))
    values = draw(values_of(kind, width))
    if draw(st.integers(0, 9)) == 0:  # the value in two fields, which merge
        cut = draw(st.integers(0, len(values)))
        value = [delimited(2, draw(feature_message(kind, values[:cut]))),
                 delimited(2, draw(feature_message(kind, values[cut:])))]
    else:
        value = [delimited(2, draw(feature_message(kind, values)), draw(pads))]
    parts = [*key, *value] if draw(st.integers(0, 3)) else [*value, *key]
    parts.insert(draw(st.integers(0, len(parts))), _maybe_unknown(draw, (3, 4, 8)))
    return delimited(1, b"".join(parts), draw(pads))


@st.composite
def schemas(draw: st.DrawFn) -> list[Wanted]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    return [Wanted(n, draw(st.sampled_from(KINDS)), draw(st.integers(1, 3))) for n in names]


@st.composite
def record(draw: st.DrawFn, wanted: list[Wanted]) -> bytes:
    """An Example for `wanted`: mostly right, sometimes a feature missing, of another kind or
    width, empty, or given twice (the later entry wins); extra features; entries in any order
    over one or two Features; unknown fields."""
    entries = []
    for w in wanted:
        mode = draw(st.sampled_from(["right"] * 7 + ["missing", "kind", "width", "empty",
                                                     "twice"]))
        if mode == "missing":
            continue
        kind = draw(st.sampled_from([k for k in KINDS if k != w.kind])) if mode == "kind" \
            else w.kind
        width = draw(st.integers(0, 4).filter(lambda n, w=w: n != w.width)) \
            if mode == "width" else w.width
        if mode == "empty":
            entries.append(delimited(1, delimited(1, w.name.encode()) + delimited(2, b"")))
            continue
        if mode == "twice":
            entries.append(draw(entry(w.name.encode(), draw(st.sampled_from(KINDS)), 1)))
        entries.append(draw(entry(w.name.encode(), kind, width)))
    for name in draw(st.lists(st.sampled_from(OTHER_NAMES), max_size=2)):
        entries.append(draw(entry(name.encode(), draw(st.sampled_from(KINDS)),
                                  draw(st.integers(0, 2)))))
    if draw(st.integers(0, 19)) == 0:  # a name that is not UTF-8: protobuf refuses it
        entries.append(draw(entry(b"\xff\xfe", 2, 1)))
    if draw(st.integers(0, 3)) == 0:
        entries = draw(st.permutations(entries))
    cut = draw(st.integers(0, len(entries))) if draw(st.integers(0, 5)) == 0 else len(entries)
    groups = [entries[:cut], entries[cut:]] if cut < len(entries) else [entries]
    parts = [_maybe_unknown(draw, (2, 3, 9))]
    for group in groups:
        body = b"".join(group) + _maybe_unknown(draw, (2, 3, 9))
        parts.append(delimited(1, body, draw(pads)))
    return b"".join(parts)


def canonical(wanted: list[Wanted], values: list[list[object]],
              extra: tuple[tuple[str, int, list[object]], ...] = ()) -> bytes:
    """The layout protobuf's serializer writes (the decoder's template path)."""
    entries = []
    items = [(w.name, w.kind, v) for w, v in zip(wanted, values, strict=True)] + list(extra)
    for name, kind, vals in items:
        body = (b"".join(delimited(1, v) for v in vals) if kind == 1  # type: ignore[arg-type]
                else _packed(kind, vals, 0))
        entries.append(delimited(1, delimited(1, name.encode())
                                 + delimited(2, delimited(kind, body))))
    return delimited(1, b"".join(entries))


@st.composite
def canonical_batch(draw: st.DrawFn, wanted: list[Wanted], *, floats_only: bool = False
                    ) -> list[bytes]:
    """Canonical records with the same names, kinds and widths (values of other lengths make
    other layouts); with `floats_only`, records that differ only in float values, which is
    one layout."""
    extra = tuple((name, kind, draw(values_of(kind, 1))) for name, kind in draw(
        st.lists(st.tuples(st.sampled_from(OTHER_NAMES), st.sampled_from(KINDS)),
                 max_size=2, unique_by=lambda t: t[0])))
    first = [draw(values_of(w.kind, w.width)) for w in wanted]
    rows = []
    for _ in range(draw(st.integers(2, 6))):
        values = [draw(values_of(w.kind, w.width)) if w.kind == 2 or not floats_only
                  else first[f] for f, w in enumerate(wanted)]
        rows.append(canonical(wanted, values, extra))
    return rows


HUGE = (varint(2**63), varint(2**64 - 1), b"\xff" * 10 + b"\x01", b"\x80" * 11,
        varint(2**31), varint(2**32 + 5), b"\xff\xff\xff\xff\x0f", b"\x80")
"""Lengths and varints that are too big, overflow 64 bits or never end."""


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with one to three mutations: a byte flipped, set or deleted, bytes inserted
    (among them huge and overflowing varints), or the end cut off anywhere."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "huge", "cut"]))
        at = draw(st.integers(0, len(out)))
        if op == "cut":
            del out[at:]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif op == "huge":
            out[at:at] = draw(st.sampled_from(HUGE))
        elif at < len(out):
            if op == "flip":
                out[at] ^= draw(st.integers(1, 255))
            elif op == "set":
                out[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12]))
            else:
                del out[at]
    return bytes(out)
