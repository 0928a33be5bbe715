"""Static scan of a SavedModel's graph for ops that reach outside the model, before loading it.

A SavedModel is a program (TensorFlow's SECURITY.md): loading and calling it runs whatever ops
its graphs hold. The scan reads `saved_model.pb` with the protobuf classes TensorFlow ships
(parsing a protobuf runs no graph) and lists every node of every MetaGraph: the graph's own
nodes and every function in its function library (a `tf.function` body, the signature's
callees, loops' and conditions' branches are all library functions). A node whose op is in
`DENIED_OPS` fails the gate, naming the op and where it is.

Checkpoint ops (`SaveV2`, `RestoreV2`, `MergeV2Checkpoints`, ...) are in every SavedModel: its
saver functions (`__inference__traced_save_*`, `__inference__traced_restore_*`, and the TF1
`save/` nodes) write and read the variables' checkpoint, and TF Serving runs the restore op.
They are allowed there only, and there only checkpoint ops are allowed.

This is a denylist of the ops TensorFlow itself registers; a custom op (a shared library)
cannot be checked this way, which is why loading also happens in a confined child process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from promoter.errors import ModelLoadError

DENIED_OPS: dict[str, str] = {
    # Files: read or write any path the process can (a `gs://` or `s3://` path is network).
    **dict.fromkeys(["ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst",
                     "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
                     "LoadAndRemapMatrix", "GenerateVocabRemapping", "Save", "SaveSlices",
                     "Restore", "RestoreSlice"], "reads or writes files"),
    **dict.fromkeys(["WholeFileReader", "WholeFileReaderV2", "TextLineReader",
                     "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
                     "TFRecordReader", "TFRecordReaderV2", "IdentityReader", "IdentityReaderV2",
                     "LMDBReader", "ReaderReadV2", "ReaderRead", "ReaderReadUpToV2"],
                    "reads files (queue-based readers)"),
    **dict.fromkeys(["TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
                     "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "LMDBDataset",
                     "ExperimentalLMDBDataset", "SaveDataset", "SaveDatasetV2", "LoadDataset",
                     "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
                     "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "MatchingFilesDataset",
                     "ExperimentalMatchingFilesDataset", "DistributedSave"],
                    "reads or writes files (tf.data)"),
    **dict.fromkeys(["CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
                     "WriteRawProtoSummary", "WriteScalarSummary", "WriteHistogramSummary",
                     "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
                     "ImportEvent", "FlushSummaryWriter"], "writes summary files"),
    **dict.fromkeys(["Print", "PrintV2"],
                    "prints, and PrintV2 writes to any file (output_stream='file://...')"),
    **dict.fromkeys(["DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
                     "DebugNumericSummary", "DebugNumericSummaryV2"],
                    "sends tensors to debug URLs (files or gRPC)"),
    # Processes: run Python code of the process that loads the model.
    **dict.fromkeys(["PyFunc", "PyFuncStateless", "EagerPyFunc"],
                    "calls back into Python (arbitrary code)"),
    # Network.
    **dict.fromkeys(["DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
                     "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2"],
                    "talks to a tf.data service over the network"),
    **dict.fromkeys(["Rpc", "TryRpc", "RpcCall", "RpcClient", "RpcServer", "RpcServerStart",
                     "RpcServerRegister", "RpcCheckStatus", "RpcGetValue",
                     "DeleteRpcFutureResource"],
                    "makes or serves network calls"),
    **dict.fromkeys(["GcsConfigureCredentials", "GcsConfigureBlockCache",
                     "BigQueryReader", "GenerateBigQueryReaderPartitions"],
                    "configures or reads cloud storage over the network"),
}
"""Op -> why it is refused. See the module docstring for checkpoint ops."""

CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename",
                            "ShardedFilenames", "StringJoin", "Identity", "NoOp", "Const",
                            "Placeholder", "Pack", "StaticRegexFullMatch", "Select",
                            "ReadVariableOp", "AssignVariableOp", "DisableCopyOnRead",
                            "StatefulPartitionedCall", "PartitionedCall", "SelectV2",
                            "VarHandleOp", "AssignVariableXlaConcatND", "ReadVariableXlaSplitND"})
"""Ops a saver function may hold."""
_SAVER_ONLY = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename",
                         "ShardedFilenames"})
_SAVER_FUNCTIONS = ("__inference__traced_save_", "__inference__traced_restore_")


@dataclass(frozen=True, slots=True)
class Finding:
    """One refused op in a SavedModel's graph."""

    op: str
    where: str
    """E.g. "function __inference_serve_12, node ReadFile_1"."""
    why: str

    def describe(self) -> str:
        return f"{self.op} ({self.why}) at {self.where}"


def scan_nodes(nodes: Iterable[tuple[str, str, str]]) -> list[Finding]:
    """Findings for (container, node name, op) triples; `container` is `graph` or a library
    function's name. Pure: the tests feed it synthetic graphs."""
    findings: list[Finding] = []
    for container, node, op in nodes:
        saver = container.startswith(_SAVER_FUNCTIONS) or (
            container == "graph" and (node.startswith("save/") or node == "saver_filename"))
        where = f"{container}, node {node}" if container != "graph" else f"graph node {node}"
        if op in DENIED_OPS:
            findings.append(Finding(op, where, DENIED_OPS[op]))
        elif op in _SAVER_ONLY and not saver:
            findings.append(Finding(op, where, "reads or writes checkpoint files outside the "
                                               "SavedModel's saver"))
        elif container.startswith(_SAVER_FUNCTIONS) and op not in CHECKPOINT_OPS:
            findings.append(Finding(op, where, "is not a checkpoint op, in a saver function "
                                               "that TF Serving runs on load"))
    return findings


def scan_saved_model(path: Path, *, label: str = "the model") -> list[Finding]:
    """Parse `path`/saved_model.pb (without loading the model) and scan every node.

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
    triples: list[tuple[str, str, str]] = []
    for meta in model.meta_graphs:
        triples += [("graph", n.name, n.op) for n in meta.graph_def.node]
        for function in meta.graph_def.library.function:
            name = function.signature.name
            triples += [(f"function {name}" if not name.startswith(_SAVER_FUNCTIONS) else name,
                         n.name, n.op) for n in function.node_def]
    return scan_nodes(triples)
