"""Which TensorFlow ops an untrusted SavedModel may hold: the tables `graph_scan` checks against.

Pure data, no TensorFlow import. Four tables, each with a different rule:

- `COMPUTE_OPS`: ops that only compute on tensors and on resources the model creates in its own
  process (its variables, lookup tables, tensor lists), with no path, URL, address or device
  name among their inputs or attributes. Everything else is refused, so an op TensorFlow adds
  in a later release, or one nobody thought of, is refused until someone reads its kernel and
  lists it here (or a policy lists it in `evaluation.sandbox.allowOps`).
- `ASSET_OPS`: ops that read a file named by an input. Allowed only where that input is, at
  every place the function is called or bound, one of the model's own `assets/` files.
- `SAVER_ONLY_OPS`: the checkpoint file ops of the SavedModel's saver (found through the
  MetaGraph's `saver_def`, never by a function's name); they appear nowhere else.
- `REFUSED_OPS`: ops known to reach outside the process (files, network, Python, other
  devices), with the reason the report gives. They are refused anyway (they are not in
  `COMPUTE_OPS`); the table gives a better reason, and a policy may not allow them.

How `COMPUTE_OPS` was chosen: every op of the demo's Keras models (`promoter.demo_models`),
the test fixtures' `tf.Module` models and typical Keras layers (Dense, Conv, pooling, RNNs,
attention, normalization, Embedding, StringLookup/Hashing/Discretization preprocessing)
exported with `model.export()`, plus the families they come from (math, array, nn, image
decoding from tensors, string, sparse/ragged, control flow and function calls, variables,
in-memory lookup tables, tensor lists and arrays, random numbers), read against TensorFlow's
registered op list (1,908 ops in 2.21). Left out on purpose although they compute: tf.data
(datasets name files and run their own functions; `CSVDataset`/`SqlDataset`/`CacheDatasetV2`
read and write paths), queues, barriers, staging areas and session handles (shared state
across sessions), summaries, `Batch*` (TF Serving's cross-request batching), `Copy`/`CopyHost`
(their debug specs name URLs), XLA/TPU/DTensor/collective/NCCL ops (other devices and hosts),
BoostedTrees and candidate samplers (`FixedUnigramCandidateSampler` reads `vocab_file`),
`DecodeProtoV2`/`EncodeProto` (`descriptor_source` may be a file), `ImmutableConst` (maps a
file), `MlirPassthroughOp`. `Abort` is kept: it only ends the worker, which is then reported
as a crash.
"""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MATH = _names("""
    Abs AccumulateNV2 Acos Acosh Add AddN AddV2 All Angle Any ApproximateEqual ArgMax ArgMin
    Asin Asinh Atan Atan2 Atanh BesselI0 BesselI0e BesselI1 BesselI1e BesselJ0 BesselJ1
    BesselK0 BesselK0e BesselK1 BesselK1e BesselY0 BesselY1 Betainc Bincount BitwiseAnd
    BitwiseOr BitwiseXor Bucketize Cast Ceil ClipByValue Complex ComplexAbs Conj Cos Cosh
    Cross Cumprod Cumsum CumulativeLogsumexp Dawsn DenseBincount Digamma Div DivNoNan Equal Erf
    Erfc Erfinv EuclideanNorm Exp Expint Expm1 Floor FloorDiv FloorMod FresnelCos FresnelSin
    Greater GreaterEqual HistogramFixedWidth Igamma IgammaGradA Igammac Imag InTopK InTopKV2 Inv
    InvGrad Invert IsFinite IsInf IsNan LeftShift Less LessEqual Lgamma LinSpace Log Log1p
    LogicalAnd LogicalNot LogicalOr Max Maximum Mean Min Minimum Mod Mul MulNoNan Ndtri Neg
    NextAfter NotEqual Polygamma PopulationCount Pow Prod Range Real RealDiv Reciprocal
    ReciprocalGrad RightShift Rint Round Rsqrt RsqrtGrad Select SelectV2 Sign Sin Sinh Spence
    Sqrt SqrtGrad Square SquaredDifference Sub Sum Tan Tanh TanhGrad TruncateDiv TruncateMod
    Xdivy Xlog1py Xlogy Zeta SegmentMax SegmentMaxV2 SegmentMean SegmentMin SegmentMinV2
    SegmentProd SegmentProdV2 SegmentSum SegmentSumV2 UnsortedSegmentMax UnsortedSegmentMin
    UnsortedSegmentProd UnsortedSegmentSum TopKV2 NthElement LowerBound UpperBound
""")
_LINALG = _names("""
    MatMul BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum Cholesky CholeskyGrad Eig
    LogMatrixDeterminant Lu MatrixBandPart MatrixDeterminant MatrixDiag MatrixDiagPart
    MatrixDiagPartV2 MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixExponential MatrixInverse
    MatrixLogarithm MatrixSetDiag MatrixSetDiagV2 MatrixSetDiagV3 MatrixSolve MatrixSolveLs
    MatrixSquareRoot MatrixTriangularSolve BandedTriangularSolve Qr SelfAdjointEigV2 Svd
    TridiagonalMatMul TridiagonalSolve FFT FFT2D FFT3D FFTND IFFT IFFT2D IFFT3D IFFTND RFFT
    RFFT2D RFFT3D RFFTND IRFFT IRFFT2D IRFFT3D IRFFTND
""")
_ARRAY = _names("""
    BatchToSpace BatchToSpaceND Bitcast BroadcastArgs BroadcastGradientArgs BroadcastTo
    CheckNumerics CheckNumericsV2 Concat ConcatOffset ConcatV2 Const ConjugateTranspose
    DepthToSpace Diag DiagPart DynamicPartition DynamicStitch Empty EnsureShape ExpandDims
    ExtractImagePatches ExtractVolumePatches Fill Gather GatherNd GatherV2 GuaranteeConst
    HostConst Identity IdentityN InplaceAdd InplaceSub InplaceUpdate InvertPermutation ListDiff
    MirrorPad MirrorPadGrad OneHot OnesLike Pack Pad PadV2 ParallelConcat ParallelDynamicStitch
    Placeholder PlaceholderV2 PlaceholderWithDefault PreventGradient Rank Reshape Reverse
    ReverseSequence ReverseV2 Roll ScatterNd ScatterNdNonAliasingAdd Shape ShapeN Size Slice
    Snapshot SpaceToBatch SpaceToBatchND SpaceToDepth Split SplitV Squeeze StopGradient
    StridedSlice StridedSliceGrad TensorScatterAdd TensorScatterMax TensorScatterMin
    TensorScatterSub TensorScatterUpdate TensorStridedSliceUpdate Tile TileGrad Transpose
    Unique UniqueV2 UniqueWithCounts UniqueWithCountsV2 Unpack UnravelIndex Where ZerosLike
    DenseToDenseSetOperation DenseToSparseSetOperation SparseToSparseSetOperation SetSize
    QuantizeAndDequantize QuantizeAndDequantizeV2 QuantizeAndDequantizeV3
    QuantizeAndDequantizeV4 FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars
    FakeQuantWithMinMaxVarsPerChannel Dequantize QuantizeV2 Requantize RequantizationRange
    QuantizeDownAndShrinkRange QuantizedMatMul QuantizedConv2D QuantizedBiasAdd QuantizedRelu
    QuantizedRelu6 QuantizedAdd QuantizedMul QuantizedConcat QuantizedConcatV2
    QuantizedReshape QuantizedAvgPool QuantizedMaxPool UniformQuantize UniformDequantize
    UniformRequantize Assert Abort NoOp
""")
_NN = _names("""
    AvgPool AvgPool3D BiasAdd BiasAddV1 Conv Conv2D Conv2DBackpropInput Conv2DBackpropInputV2
    Conv3D Conv3DBackpropInputV2 DepthwiseConv2dNative DepthwiseConv2dNativeBackpropInput
    Dilation2D Elu FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 L2Loss LRN LeakyRelu
    LogSoftmax MaxPool MaxPool3D MaxPoolV2 MaxPoolWithArgmax Relu Relu6 Selu Sigmoid Softmax
    SoftmaxCrossEntropyWithLogits Softplus Softsign SparseSoftmaxCrossEntropyWithLogits
    FractionalAvgPool FractionalMaxPool BlockLSTM BlockLSTMV2 LSTMBlockCell GRUBlockCell CudnnRNN
    CudnnRNNV2 CudnnRNNV3 CudnnRNNParamsSize CudnnRNNCanonicalToParams
    CudnnRNNCanonicalToParamsV2 CudnnRNNParamsToCanonical CudnnRNNParamsToCanonicalV2
    CTCGreedyDecoder CTCBeamSearchDecoder DataFormatDimMap DataFormatVecPermute
    NonMaxSuppression NonMaxSuppressionV2 NonMaxSuppressionV3 NonMaxSuppressionV4
    NonMaxSuppressionV5 NonMaxSuppressionWithOverlaps CombinedNonMaxSuppression
    ApproxTopK
""")
_IMAGE = _names("""
    AdjustContrast AdjustContrastv2 AdjustHue AdjustSaturation CropAndResize DecodeAndCropJpeg
    DecodeBmp DecodeGif DecodeImage DecodeJpeg DecodePng DecodeWebP DrawBoundingBoxes
    DrawBoundingBoxesV2 EncodeJpeg EncodeJpegVariableQuality EncodePng ExtractGlimpse
    ExtractGlimpseV2 ExtractJpegShape HSVToRGB ImageProjectiveTransformV2
    ImageProjectiveTransformV3 RGBToHSV ResizeArea ResizeBicubic ResizeBilinear
    ResizeNearestNeighbor ScaleAndTranslate StatelessSampleDistortedBoundingBox
    SampleDistortedBoundingBox SampleDistortedBoundingBoxV2 DecodeWav EncodeWav
    AudioSpectrogram Mfcc
""")
_STRING = _names("""
    AsString DecodeBase64 DecodeCSV DecodeCompressed DecodeJSONExample DecodePaddedRaw DecodeRaw
    EditDistance EncodeBase64 Fingerprint ParseExample ParseExampleV2 ParseSequenceExample
    ParseSequenceExampleV2 ParseSingleExample ParseSingleSequenceExample ParseTensor
    ReduceJoin RegexFullMatch RegexReplace SerializeTensor StaticRegexFullMatch
    StaticRegexReplace StringFormat StringJoin StringLength StringLower StringNGrams StringSplit
    StringSplitV2 StringStrip StringToHashBucket StringToHashBucketFast StringToHashBucketStrong
    StringToNumber StringUpper Substr UnicodeDecode UnicodeDecodeWithOffsets UnicodeEncode
    UnicodeScript UnicodeTranscode UnsortedSegmentJoin
""")
_SPARSE_RAGGED = _names("""
    DenseCountSparseOutput DeserializeManySparse DeserializeSparse RaggedBincount
    RaggedCountSparseOutput RaggedCross RaggedFillEmptyRows RaggedGather RaggedRange
    RaggedTensorFromVariant RaggedTensorToSparse RaggedTensorToTensor RaggedTensorToVariant
    SerializeManySparse SerializeSparse SparseAdd SparseBincount SparseConcat
    SparseCountSparseOutput SparseCross SparseCrossHashed SparseCrossV2 SparseDenseCwiseAdd
    SparseDenseCwiseDiv SparseDenseCwiseMul SparseFillEmptyRows SparseMatMul SparseReduceMax
    SparseReduceMaxSparse SparseReduceSum SparseReduceSumSparse SparseReorder SparseReshape
    SparseSegmentMean SparseSegmentMeanWithNumSegments SparseSegmentSqrtN
    SparseSegmentSqrtNWithNumSegments SparseSegmentSum SparseSegmentSumWithNumSegments
    SparseSlice SparseSoftmax SparseSparseMaximum SparseSparseMinimum SparseSplit
    SparseTensorDenseAdd SparseTensorDenseMatMul SparseToDense
    CompositeTensorVariantFromComponents CompositeTensorVariantToComponents
""")
_CONTROL_FLOW = _names("""
    Case StatelessCase If StatelessIf While StatelessWhile PartitionedCall
    StatefulPartitionedCall Switch Merge Enter Exit NextIteration LoopCond ControlTrigger
    OptionalFromValue OptionalGetValue OptionalHasValue OptionalNone
""")
_STATE = _names("""
    VarHandleOp ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp
    VarIsInitializedOp VariableShape DestroyResourceOp DisableCopyOnRead ResourceGather
    ResourceGatherNd ResourceScatterAdd ResourceScatterDiv ResourceScatterMax
    ResourceScatterMin ResourceScatterMul ResourceScatterNdAdd ResourceScatterNdMax
    ResourceScatterNdMin ResourceScatterNdSub ResourceScatterNdUpdate ResourceScatterSub
    ResourceScatterUpdate ResourceStridedSliceAssign
    VariableV2 Variable Assign AssignAdd AssignSub IsVariableInitialized
    HashTable HashTableV2 MutableHashTable MutableHashTableV2 MutableHashTableOfTensors
    MutableHashTableOfTensorsV2 MutableDenseHashTable MutableDenseHashTableV2
    AnonymousHashTable AnonymousMutableHashTable AnonymousMutableHashTableOfTensors
    AnonymousMutableDenseHashTable InitializeTable InitializeTableV2 LookupTableExport
    LookupTableExportV2 LookupTableFind LookupTableFindV2 LookupTableImport LookupTableImportV2
    LookupTableInsert LookupTableInsertV2 LookupTableRemoveV2 LookupTableSize LookupTableSizeV2
    EmptyTensorList TensorListConcat TensorListConcatLists TensorListConcatV2
    TensorListElementShape TensorListFromTensor TensorListGather TensorListGetItem
    TensorListLength TensorListPopBack TensorListPushBack TensorListPushBackBatch
    TensorListReserve TensorListResize TensorListScatter TensorListScatterIntoExistingList
    TensorListScatterV2 TensorListSetItem TensorListSplit TensorListStack EmptyTensorMap
    TensorMapErase TensorMapHasKey TensorMapInsert TensorMapLookup TensorMapSize
    TensorMapStackKeys TensorArrayV3 TensorArrayCloseV3 TensorArrayConcatV3 TensorArrayGatherV3
    TensorArrayGradV3 TensorArrayGradWithShape TensorArrayReadV3 TensorArrayScatterV3
    TensorArraySizeV3 TensorArraySplitV3 TensorArrayWriteV3 StackV2 StackPushV2 StackPopV2
    StackCloseV2 MutexV2 MutexLock ConsumeMutexLock
""")
_RANDOM = _names("""
    Multinomial ParameterizedTruncatedNormal RandomGamma RandomPoisson RandomPoissonV2
    RandomShuffle RandomStandardNormal RandomUniform RandomUniformInt TruncatedNormal
    RandomCrop RandomIndexShuffle NonDeterministicInts RngReadAndSkip RngSkip
    StatefulRandomBinomial StatefulStandardNormal StatefulStandardNormalV2
    StatefulTruncatedNormal StatefulUniform StatefulUniformFullInt StatefulUniformInt
    StatelessMultinomial StatelessParameterizedTruncatedNormal StatelessRandomBinomial
    StatelessRandomGammaV2 StatelessRandomGammaV3 StatelessRandomGetAlg
    StatelessRandomGetKeyCounter StatelessRandomGetKeyCounterAlg StatelessRandomNormal
    StatelessRandomNormalV2 StatelessRandomPoisson StatelessRandomUniform
    StatelessRandomUniformFullInt StatelessRandomUniformFullIntV2 StatelessRandomUniformInt
    StatelessRandomUniformIntV2 StatelessRandomUniformV2 StatelessShuffle
    StatelessTruncatedNormal StatelessTruncatedNormalV2 AnonymousSeedGenerator
    AnonymousRandomSeedGenerator DeleteSeedGenerator DeleteRandomSeedGenerator
    DummySeedGenerator
""")

COMPUTE_OPS: frozenset[str] = (_MATH | _LINALG | _ARRAY | _NN | _IMAGE | _STRING
                               | _SPARSE_RAGGED | _CONTROL_FLOW | _STATE | _RANDOM)
"""Ops that only compute; see the module docstring for what is left out and why."""

ASSET_OPS: frozenset[str] = frozenset({"InitializeTableFromTextFile",
                                       "InitializeTableFromTextFileV2"})
"""Read the file their `filename` input names: allowed for the model's own assets only."""

ASSET_FILENAME_INPUT = 1
"""Index of the filename among an `ASSET_OPS` node's inputs (after the table handle)."""

SAVER_ONLY_OPS: frozenset[str] = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints",
                                            "ShardedFilename"})
"""Checkpoint file ops: allowed in the saver (found through `saver_def`) only."""

_FILES = "reads or writes files"
REFUSED_OPS: dict[str, str] = {
    **dict.fromkeys(["ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst",
                     "LoadAndRemapMatrix", "GenerateVocabRemapping", "Save", "SaveSlices",
                     "Restore", "RestoreSlice", "DTensorRestoreV2", "RecordInput",
                     "FixedUnigramCandidateSampler", "DumpTensor", "CalibrationStatisticsSaver",
                     "FileSystemSetConfiguration", "InitializeTableFromDataset"], _FILES),
    **dict.fromkeys(["DecodeProto", "DecodeProtoV2", "EncodeProto"],
                    "reads a descriptor file named by its descriptor_source attribute"),
    **dict.fromkeys(["WholeFileReader", "WholeFileReaderV2", "TextLineReader",
                     "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
                     "TFRecordReader", "TFRecordReaderV2", "IdentityReader", "IdentityReaderV2",
                     "LMDBReader", "ReaderReadV2", "ReaderRead", "ReaderReadUpToV2",
                     "ReaderReadUpTo"], "reads files (queue-based readers)"),
    **dict.fromkeys(["TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
                     "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "LMDBDataset",
                     "ExperimentalLMDBDataset", "SaveDataset", "SaveDatasetV2", "LoadDataset",
                     "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
                     "SnapshotChunkDataset", "SnapshotNestedDatasetReader",
                     "ListSnapshotChunksDataset", "DatasetToTFRecord",
                     "ExperimentalDatasetToTFRecord", "MatchingFilesDataset",
                     "ExperimentalMatchingFilesDataset", "DistributedSave", "CSVDataset",
                     "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset",
                     "ExperimentalSqlDataset", "CacheDataset", "CacheDatasetV2"],
                    "reads or writes files (tf.data)"),
    **dict.fromkeys(["CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
                     "WriteRawProtoSummary", "WriteScalarSummary", "WriteHistogramSummary",
                     "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
                     "ImportEvent", "FlushSummaryWriter", "SummaryWriter"],
                    "writes summary files"),
    **dict.fromkeys(["Print", "PrintV2"],
                    "prints, and PrintV2 writes to any file (output_stream='file://...')"),
    **dict.fromkeys(["DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
                     "DebugNumericSummary", "DebugNumericSummaryV2", "Copy", "CopyHost"],
                    "sends tensors to debug URLs (files or gRPC)"),
    **dict.fromkeys(["PyFunc", "PyFuncStateless", "EagerPyFunc"],
                    "calls back into Python (arbitrary code)"),
    **dict.fromkeys(["DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
                     "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2"],
                    "talks to a tf.data service over the network"),
    **dict.fromkeys(["Rpc", "TryRpc", "RpcCall", "RpcClient", "RpcServer", "RpcServerStart",
                     "RpcServerRegister", "RpcCheckStatus", "RpcGetValue",
                     "DeleteRpcFutureResource"], "makes or serves network calls"),
    **dict.fromkeys(["GcsConfigureCredentials", "GcsConfigureBlockCache",
                     "BigQueryReader", "GenerateBigQueryReaderPartitions"],
                    "configures or reads cloud storage over the network"),
    **dict.fromkeys(["Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv", "RemoteCall",
                     "CollectiveReduce", "CollectiveReduceV2", "CollectiveReduceV3",
                     "CollectiveGather", "CollectiveGatherV2", "CollectiveBcastSend",
                     "CollectiveBcastRecv", "CollectiveBcastSendV2", "CollectiveBcastRecvV2",
                     "CollectivePermute", "CollectiveAllToAllV2", "CollectiveAllToAllV3",
                     "CollectiveReduceScatterV2", "CollectiveInitializeCommunicator",
                     "NcclAllReduce", "NcclBroadcast", "NcclReduce"],
                    "exchanges tensors with other devices or hosts"),
}
"""Op -> why it is refused. A policy cannot allow these (`evaluation.sandbox.allowOps`): the
worker may read the holdout, so an op that reads files could read its labels."""

NEVER_ALLOWABLE: frozenset[str] = frozenset(REFUSED_OPS) | SAVER_ONLY_OPS | ASSET_OPS
"""What `evaluation.sandbox.allowOps` may not name (checkpoint and asset ops have their own
structural rules, which a policy cannot switch off)."""
