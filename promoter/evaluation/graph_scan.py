"""Static check of a SavedModel's graphs against an allowlist of ops, before loading it.

A SavedModel is a program (TensorFlow's SECURITY.md): loading and calling it runs whatever ops
its graphs hold. The scan reads `saved_model.pb` with the protobuf classes TensorFlow ships
(parsing a protobuf runs no graph) and checks every node of every MetaGraph: the graph's own
nodes and every function in its function library (a `tf.function` body, the signature's
callees, loops' and conditions' branches are all library functions).

The rule is an allowlist (`promoter.domain.tensorflow_ops`): a node passes if its op only computes
(`COMPUTE_OPS`), calls a function of the library, or is named in the policy's
`evaluation.sandbox.allowOps`. Everything else is a finding naming the op and the function (or
graph node) holding it, so an op nobody has judged yet is refused instead of run. Two kinds of
op touch files and are allowed by structure, never by name:

- **The saver.** `tf.saved_model.save` writes save and restore functions that TF Serving runs
  (`SaveV2`, `RestoreV2`, `MergeV2Checkpoints`, `ShardedFilename`). They are found through the
  MetaGraph's `saver_def`: the graph nodes it names (`save_tensor_name`, `restore_op_name`)
  and, transitively, the functions those nodes call. A function that anything else also calls
  (a signature, the object graph, another function) is not the saver, whatever its name, and
  the checkpoint ops are refused there. The saver's other ops must pass the allowlist like any
  (a table's saveable exports and imports its contents there), and each checkpoint file op's
  path must be the saver's filename tensor (`filename_tensor_name`, which loaders feed
  with `<model>/variables/variables`), optionally suffixed with constants free of `..`.
  `tf.saved_model.load` (what the worker uses) restores TF2 variables with its own `RestoreV2`
  on that path and never runs the saver functions; a TF1 SavedModel's restore op is run, on
  that same path.
- **Assets.** `InitializeTableFromTextFile(V2)` (a lookup table initialised from a vocabulary
  file) is allowed only if its filename input is, at every place its function is called or
  bound, one of the model's own assets: bound in the object graph to an `asset` object, or fed
  from a graph placeholder listed in `asset_file_def` (also through a variable assigned only
  from such a placeholder). The asset's file name must be relative, without `..`, and name a
  regular file inside the model's `assets/` directory (`asset_ok`).

A function name alone never grants anything. Custom ops from shared libraries are refused
like any unknown op (a SavedModel cannot load a library by itself; an op registered by one
would be unknown here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from promoter.domain.tensorflow_ops import (
    ASSET_FILENAME_INPUT,
    ASSET_OPS,
    COMPUTE_OPS,
    NEVER_ALLOWABLE,
    REFUSED_OPS,
    SAVER_ONLY_OPS,
)
from promoter.errors import ModelLoadError
from promoter.evaluation.graph_model import (
    Finding,
    Function,
    MetaGraph,
    Node,
    _from_proto,
    _node_name,
)

GRAPH = ""
"""The container name of a MetaGraph's own graph (functions are named by their name)."""

_CALL_OPS = frozenset({"StatefulPartitionedCall", "PartitionedCall"})
"""Call ops whose inputs are the callee's arguments, one for one."""
_PREFIX_INPUTS: dict[str, tuple[int, ...]] = {"SaveV2": (0,), "RestoreV2": (0,),
                                              "MergeV2Checkpoints": (0, 1),
                                              "ShardedFilename": (0,)}
"""Inputs of the saver's file ops that are checkpoint paths."""


def _data_inputs(node: Node) -> list[str]:
    return [ref for ref in node.inputs if not ref.startswith("^")]


class _Scan:
    """One MetaGraph's call graph, saver and provenance queries."""

    def __init__(self, graph: MetaGraph, *, allow: frozenset[str],
                 asset_ok: Callable[[str], str | None]) -> None:
        self.graph = graph
        self.allow = allow
        self.asset_ok = asset_ok
        self.by_name: dict[str, dict[str, Node]] = {GRAPH: {n.name: n for n in graph.nodes}}
        for name, function in graph.functions.items():
            self.by_name[name] = {n.name: n for n in function.nodes}
        self.call_sites: dict[str, list[tuple[str, Node]]] = {}
        for container, nodes in self._containers():
            for node in nodes:
                for callee in self._callees(node):
                    self.call_sites.setdefault(callee, []).append((container, node))
        self.saver_nodes, self.saver_functions = self._find_saver()

    def _containers(self) -> Iterable[tuple[str, tuple[Node, ...]]]:
        yield GRAPH, self.graph.nodes
        for name, function in self.graph.functions.items():
            yield name, function.nodes

    def _callees(self, node: Node) -> tuple[str, ...]:
        return node.calls + ((node.op,) if node.op in self.graph.functions else ())

    def _closure(self, roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = [r for r in roots if r in self.graph.functions]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += [c for n in self.graph.functions[name].nodes for c in self._callees(n)
                     if c in self.graph.functions and c not in seen]
        return seen

    def _find_saver(self) -> tuple[set[str], set[str]]:
        """Graph nodes of the saver (what its save/restore nodes depend on) and the functions
        only the saver calls."""
        saver = self.graph.saver
        if saver is None:
            return set(), set()
        graph = self.by_name[GRAPH]
        roots = [_node_name(saver.save_tensor), _node_name(saver.restore_op)]
        nodes: set[str] = set()
        todo = [r for r in roots if r in graph]
        while todo:
            name = todo.pop()
            if name in nodes:
                continue
            nodes.add(name)
            todo += [_node_name(ref) for ref in graph[name].inputs if _node_name(ref) in graph]
        candidates = self._closure(c for n in nodes for c in self._callees(graph[n]))
        others = [c for n in self.graph.nodes if n.name not in nodes for c in self._callees(n)]
        others += self.graph.object_functions
        others += [f for f in self.graph.functions if f not in candidates]
        return nodes, candidates - self._closure(others)

    # --- checks -------------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        for container, nodes in self._containers():
            for node in nodes:
                where = (f"graph node {node.name}" if container == GRAPH
                         else f"function {container}, node {node.name}")
                why = self._refusal(container, node)
                if why is not None:
                    found.append(Finding(node.op, where, why))
                for callee in node.calls:
                    if callee not in self.graph.functions:
                        found.append(Finding(node.op, where, f"calls function {callee}, which "
                                                             "the SavedModel does not define"))
        return found

    def _refusal(self, container: str, node: Node) -> str | None:
        op = node.op
        if op in self.graph.functions:
            return None  # a call of a library function, which is checked itself
        in_saver = (container in self.saver_functions
                    or (container == GRAPH and node.name in self.saver_nodes))
        if op in SAVER_ONLY_OPS:
            if not in_saver:
                return ("reads or writes checkpoint files outside the SavedModel's saver "
                        "(the functions its saver_def names)")
            for index in _PREFIX_INPUTS[op]:
                inputs = _data_inputs(node)
                problem = ("it has too few inputs" if index >= len(inputs)
                           else self._trace(container, inputs[index], "filename", set()))
                if problem is not None:
                    return ("in the saver, but its checkpoint path is not the saver's filename "
                            f"tensor: {problem}")
            return None
        if op in COMPUTE_OPS or op in self.allow:
            return None
        if op in ASSET_OPS:
            inputs = _data_inputs(node)
            problem = ("it has too few inputs" if len(inputs) <= ASSET_FILENAME_INPUT
                       else self._trace(container, inputs[ASSET_FILENAME_INPUT], "asset", set()))
            return (None if problem is None else
                    f"reads a file that is not one of the model's own assets: {problem}")
        if op in REFUSED_OPS:
            return REFUSED_OPS[op]
        return ("is not on the allowlist of ops that only compute (a policy may add it to "
                "evaluation.sandbox.allowOps)")

    # --- provenance ---------------------------------------------------------------------

    def _trace(self, container: str, ref: str, goal: str,
               seen: set[tuple[str, str, str]]) -> str | None:
        """None if the value `ref` (in `container`) is always the goal: an own asset's path
        (`asset`) or the saver's filename tensor (`filename`); else what it is instead."""
        key = (container, _node_name(ref), goal)
        if key in seen:
            return f"{_node_name(ref)} depends on itself"
        seen = seen | {key}
        name = _node_name(ref)
        function = self.graph.functions.get(container)
        if function is not None and name in function.args:
            return self._trace_argument(function, function.args.index(name), goal, seen)
        node = self.by_name[container].get(name)
        if node is None:
            return f"input {name} is not defined"
        inputs = _data_inputs(node)
        if container == GRAPH:
            if goal == "filename" and self.graph.saver is not None and name == _node_name(
                    self.graph.saver.filename_tensor):
                return None
            if goal == "asset" and name in self.graph.asset_tensors:
                return self.asset_ok(self.graph.asset_tensors[name])
            if goal == "asset" and node.op == "ReadVariableOp" and inputs:
                return self._trace_variable(_node_name(inputs[0]), seen)
        if node.op in ("Identity", "Snapshot") and inputs:
            return self._trace(container, inputs[0], goal, seen)
        if goal == "filename" and node.op in ("StringJoin", "ShardedFilename") and inputs:
            if node.op == "StringJoin":
                for suffix in inputs[1:]:
                    problem = self._safe_suffix(container, suffix, seen)
                    if problem is not None:
                        return problem
                if any(".." in t for t in node.text):
                    return f"StringJoin {name} joins with a separator holding '..'"
            return self._trace(container, inputs[0], goal, seen)
        if goal == "filename" and node.op == "Pack" and inputs:
            for item in inputs:
                problem = self._trace(container, item, goal, seen)
                if problem is not None:
                    return problem
            return None
        return f"it comes from {node.op} node {name}"

    def _safe_suffix(self, container: str, ref: str,
                     seen: set[tuple[str, str, str]]) -> str | None:
        node = self.by_name[container].get(_node_name(ref))
        if node is None:
            return f"suffix {_node_name(ref)} is not a constant"
        if node.op == "Const":
            bad = [t for t in node.text if ".." in t or t.startswith("/")]
            return None if not bad else f"the path suffix {bad[0]!r} leaves the saver's path"
        if node.op in ("Select", "SelectV2"):
            for choice in _data_inputs(node)[1:]:
                problem = self._safe_suffix(container, choice, seen)
                if problem is not None:
                    return problem
            return None
        if node.op in ("Identity", "Snapshot") and _data_inputs(node):
            return self._safe_suffix(container, _data_inputs(node)[0], seen)
        return f"the path suffix comes from {node.op} node {node.name}"

    def _trace_variable(self, variable: str, seen: set[tuple[str, str, str]]) -> str | None:
        """A graph variable holds an asset's path if every assignment to it does."""
        assigns = [n for n in self.graph.nodes if n.op in ("AssignVariableOp", "Assign")
                   and _data_inputs(n) and _node_name(_data_inputs(n)[0]) == variable]
        if not assigns:
            return f"variable {variable} is never assigned an asset's path"
        for assign in assigns:
            inputs = _data_inputs(assign)
            problem = ("an assignment without a value" if len(inputs) < 2
                       else self._trace(GRAPH, inputs[1], "asset", seen))
            if problem is not None:
                return problem
        return None

    def _trace_argument(self, function: Function, index: int, goal: str,
                        seen: set[tuple[str, str, str]]) -> str | None:
        """An argument is the goal if every caller and every object-graph binding passes it."""
        sites = 0
        bound = self.graph.bound.get(function.name)
        if bound is not None:
            explicit = len(function.args) - len(bound)
            if index < explicit:
                return (f"argument {function.args[index]} of {function.name} is passed by "
                        "whoever calls the function, not bound to an asset")
            if goal != "asset":
                return f"argument {function.args[index]} of {function.name} is bound by the " \
                       "object graph, not fed by the loader"
            asset = bound[index - explicit]
            if asset is None:
                return (f"argument {function.args[index]} of {function.name} is bound to an "
                        "object that is not an asset")
            problem = self.asset_ok(asset)
            if problem is not None:
                return problem
            sites += 1
        for container, node in self.call_sites.get(function.name, []):
            sites += 1
            if node.op not in _CALL_OPS and node.op != function.name:
                return f"{function.name} is called by {node.op} node {node.name}"
            inputs = _data_inputs(node)
            if index >= len(inputs):
                return f"{node.name} passes too few arguments to {function.name}"
            problem = self._trace(container, inputs[index], goal, seen)
            if problem is not None:
                return problem
        return None if sites else f"nothing binds argument {function.args[index]} of " \
                                  f"{function.name}"


def scan_meta_graph(graph: MetaGraph, *, allow: Iterable[str] = (),
                    asset_ok: Callable[[str], str | None] = lambda name: None) -> list[Finding]:
    """Findings for one MetaGraph; empty if every node passes. Pure: the tests feed it
    hand-built graphs. `allow` extends the allowlist (never with `NEVER_ALLOWABLE` ops:
    ValueError); `asset_ok(file name)` says why an asset file is unusable, or None."""
    allow = frozenset(allow)
    if allow & NEVER_ALLOWABLE:
        raise ValueError(f"ops that reach outside the model cannot be allowed: "
                         f"{', '.join(sorted(allow & NEVER_ALLOWABLE))}")
    return _Scan(graph, allow=allow, asset_ok=asset_ok).findings()


def scan_saved_model(path: Path, *, label: str = "the model",
                     allow: Iterable[str] = ()) -> list[Finding]:
    """Parse `path`/saved_model.pb (without loading the model) and scan every MetaGraph.

    Raises ModelLoadError if the file cannot be read or parsed (`label` names the model).
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString((path / "saved_model.pb").read_bytes())
    except (OSError, DecodeError) as exc:
        raise ModelLoadError(f"{label} cannot be loaded: {path / 'saved_model.pb'} is not a "
                             f"SavedModel protobuf ({exc})",
                             fix="re-export the SavedModel; the file is damaged") from exc
    assets = path / "assets"

    def asset_ok(name: str) -> str | None:
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
            return f"asset file name {name!r} is not a plain name inside assets/"
        try:
            real = (assets / name).resolve(strict=True)
            inside = real.is_relative_to(assets.resolve(strict=True)) and real.is_file()
        except OSError:
            inside = False
        return None if inside else f"asset {name!r} is not a file inside {assets}"

    findings: list[Finding] = []
    for meta in model.meta_graphs:
        findings += scan_meta_graph(_from_proto(meta), allow=allow, asset_ok=asset_ok)
    return findings
