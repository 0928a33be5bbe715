"""`tf.train.Example`'s schema for protobuf's own runtime, without importing TensorFlow.

The messages are those of TensorFlow's `tensorflow/core/example/{feature,example}.proto`
(Copyright The TensorFlow Authors, Apache License 2.0), rebuilt here field for field as
descriptors, so that the decoder's differential tests can run protobuf's parser (upb) in a
process that does not pay TensorFlow's import; `test_tfrecord_reader` checks that they equal
TensorFlow's own descriptors.

`reference` is the oracle of those tests: what protobuf makes of a record.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

_T = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "promoter_test"


def _field(name: str, number: int, kind: int, *, repeated: bool = False,
           message: str | None = None, oneof: int | None = None,
           packed: bool = False) -> _T:
    field = _T(name=name, number=number, type=kind,  # type: ignore[arg-type]
               label=_T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL)
    if message:
        field.type_name = f".{_PACKAGE}.{message}"
    if oneof is not None:
        field.oneof_index = oneof
    if packed:
        field.options.packed = True
    return field


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="promoter_test/example.proto",
                                               package=_PACKAGE, syntax="proto3")
    add = proto.message_type.add
    add(name="BytesList", field=[_field("value", 1, _T.TYPE_BYTES, repeated=True)])
    add(name="FloatList", field=[_field("value", 1, _T.TYPE_FLOAT, repeated=True,
                                        packed=True)])
    add(name="Int64List", field=[_field("value", 1, _T.TYPE_INT64, repeated=True,
                                        packed=True)])
    feature = add(name="Feature", field=[
        _field("bytes_list", 1, _T.TYPE_MESSAGE, message="BytesList", oneof=0),
        _field("float_list", 2, _T.TYPE_MESSAGE, message="FloatList", oneof=0),
        _field("int64_list", 3, _T.TYPE_MESSAGE, message="Int64List", oneof=0)])
    feature.oneof_decl.add(name="kind")
    entry_fields = [_field("key", 1, _T.TYPE_STRING),
                    _field("value", 2, _T.TYPE_MESSAGE, message="Feature")]
    features = add(name="Features", field=[
        _field("feature", 1, _T.TYPE_MESSAGE, repeated=True,
               message="Features.FeatureEntry")])
    features.nested_type.add(name="FeatureEntry", field=entry_fields,
                             options=descriptor_pb2.MessageOptions(map_entry=True))
    add(name="Example", field=[_field("features", 1, _T.TYPE_MESSAGE, message="Features")])
    # The same records seen one layer at a time: each map entry kept as its bytes, in order.
    add(name="Entry", field=entry_fields)
    add(name="RawFeatures", field=[_field("feature", 1, _T.TYPE_BYTES, repeated=True)])
    add(name="RawExample", field=[_field("features", 1, _T.TYPE_MESSAGE,
                                         message="RawFeatures")])
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def message_class(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Example = message_class("Example")
_Entry = message_class("Entry")
_RawExample = message_class("RawExample")

KIND_OF = {None: 0, "bytes_list": 1, "float_list": 2, "int64_list": 3}


@dataclass(frozen=True)
class Parsed:
    """What protobuf makes of one record."""

    valid: bool
    """Whether protobuf parses it (as an Example, and each map entry as a message)."""
    features: dict[str, tuple[int, list[object]]]
    """name -> (kind: 0 for an empty Feature, else the oneof's field number, values)."""


def reference(record: bytes) -> Parsed:
    """Parse `record` with protobuf.

    The features come from parsing the record one layer at a time (each map entry by itself,
    a later entry for a key replacing an earlier one), which is what protobuf's parser does
    with a map, with one exception: protobuf's Python runtime moves a map entry that holds an
    unknown field, whole, to the unknown fields of Features, where TensorFlow's C++ parser
    keeps the entry and skips the unknown field. Read layer by layer, such an entry is kept,
    as TensorFlow (and the decoder) keep it. A record is valid only if both readings accept it.
    """
    try:
        Example().ParseFromString(record)
        raw = _RawExample()
        raw.ParseFromString(record)
        features: dict[str, tuple[int, list[object]]] = {}
        for blob in raw.features.feature:
            entry = _Entry()
            entry.ParseFromString(blob)
            kind = entry.value.WhichOneof("kind")
            values = list(getattr(entry.value, kind).value) if kind else []
            features[entry.key] = (KIND_OF[kind], values)
    except DecodeError:
        return Parsed(valid=False, features={})
    return Parsed(valid=True, features=features)
