"""The graph scan's view of a SavedModel: plain values for its MetaGraphs, and reading them.

`graph_scan` checks `MetaGraph` values, never protobufs: tests build them by hand, and the
rules read without TensorFlow's classes. `_from_proto` is the one place that knows the
`MetaGraphDef` protobuf's fields (the graph, its function library, the saver, the object graph
and the assets); `Finding` is what the scan returns for a refused node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a graph or function, as much of it as the scan needs."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    """Input references as the proto writes them: `x`, `node:0`, `node:out:0`, `^control`."""
    calls: tuple[str, ...] = ()
    """Functions named by the node's attributes (`f`, branches, loop bodies)."""
    text: tuple[str, ...] = ()
    """A string Const's values, or a StringJoin's separator (the saver's path checks)."""


@dataclass(frozen=True, slots=True)
class Function:
    """A library function: its argument names (inputs in order) and its nodes."""

    name: str
    args: tuple[str, ...]
    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class SaverDef:
    """The MetaGraph's `saver_def`: the tensor and op names a loader uses to save/restore."""

    filename_tensor: str
    save_tensor: str
    restore_op: str


@dataclass(frozen=True, slots=True)
class MetaGraph:
    """What the scan reads of one MetaGraph (pure: tests build these by hand)."""

    nodes: tuple[Node, ...]
    functions: Mapping[str, Function] = field(default_factory=dict)
    saver: SaverDef | None = None
    bound: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    """Object graph: concrete function -> what each captured input (the function's last
    arguments) is bound to: the asset's file name for an asset, None for anything else."""
    object_functions: frozenset[str] = frozenset()
    """Functions the object graph refers to (methods, signatures, initializers, saveables):
    `tf.saved_model.load` may call each of them."""
    asset_tensors: Mapping[str, str] = field(default_factory=dict)
    """`asset_file_def`: graph node name of the placeholder -> the asset's file name."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One refused node in a SavedModel's graph."""

    op: str
    where: str
    """E.g. "function __inference_serve_12, node ReadFile_1"."""
    why: str

    def describe(self) -> str:
        return f"{self.op} ({self.why}) at {self.where}"


def _node_name(ref: str) -> str:
    return ref.lstrip("^").split(":")[0]



def _from_proto(meta: Any) -> MetaGraph:
    """The scan's view of a `MetaGraphDef` (untyped: TensorFlow ships no protobuf stubs)."""
    graph_def = meta.graph_def
    functions = {f.signature.name: Function(f.signature.name,
                                            tuple(a.name for a in f.signature.input_arg),
                                            tuple(_node(n) for n in f.node_def))
                 for f in graph_def.library.function}
    saver = None
    saver_def = meta.saver_def
    if saver_def.restore_op_name or saver_def.save_tensor_name:
        saver = SaverDef(saver_def.filename_tensor_name, saver_def.save_tensor_name,
                         saver_def.restore_op_name)
    asset_defs = list(meta.asset_file_def)
    objects = meta.object_graph_def
    object_functions = set(objects.concrete_functions)
    asset_of: dict[int, str] = {}
    for index, obj in enumerate(objects.nodes):
        kind = obj.WhichOneof("kind")
        if kind == "function":
            object_functions.update(obj.function.concrete_functions)
        elif kind == "bare_concrete_function":
            object_functions.add(obj.bare_concrete_function.concrete_function_name)
        elif kind == "asset":
            position = obj.asset.asset_file_def_index
            # An index past the list is no asset at all: the binding then fails the check.
            if 0 <= position < len(asset_defs):
                asset_of[index] = asset_defs[position].filename
    bound = {name: tuple(asset_of.get(i) for i in fn.bound_inputs)
             for name, fn in objects.concrete_functions.items()}
    return MetaGraph(
        nodes=tuple(_node(n) for n in graph_def.node), functions=functions, saver=saver,
        bound=bound, object_functions=frozenset(object_functions),
        asset_tensors={_node_name(a.tensor_info.name): a.filename for a in asset_defs})


def _node(proto: Any) -> Node:
    calls: list[str] = []
    text: tuple[str, ...] = ()
    attrs = proto.attr
    for key in sorted(attrs):
        value = attrs[key]
        if value.HasField("func"):
            calls.append(value.func.name)
        calls += [f.name for f in value.list.func]
    op = proto.op
    if op == "Const" and "value" in attrs:
        text = tuple(s.decode("utf-8", "replace") for s in attrs["value"].tensor.string_val)
    elif op == "StringJoin" and "separator" in attrs:
        text = (attrs["separator"].s.decode("utf-8", "replace"),)
    return Node(name=proto.name, op=op,
                inputs=tuple(proto.input), calls=tuple(calls), text=text)
