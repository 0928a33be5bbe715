"""What a digest costs on an object store, with and without the digest cache.

Starts moto's S3 server in a process of its own on 127.0.0.1 (so the server's work is not on
this process's clock), and prints medians of `--repeats` runs, measured side by side in one
run:

One version (one large variables shard of `--mib` MiB and `--small` small files):
- `get` cold: list, read every byte, digest (what the first sight of a version costs), and
  its throughput in MB/s;
- `get` cached, same store: list only (every discovery pass and resync after the first);
- `get` cached, new store on the same cache directory (another CLI process);
- `copy_version` + digest of the copy (the evaluator's private download without the model
  cache, and what the pods' init container does), and its throughput;
- the evaluator's fetch through the model cache (`CachedModelStore.copy_version` + digest of
  the private copy, as `SubprocessEvaluator` does): cold (an empty cache: download, verify,
  rename into place, copy out) and warm (a copy out of the verified entry, digested as it is
  copied, then digested again by the evaluator), with the ratio warm / cold.

A resync over `--models` models (one version each, `--model-mib` MiB): per model
`scan_versions` and `get` of its newest version, as discovery and the evaluation gate do,
cold (nothing cached), warm (same process) and warm from the cache on disk (a new store),
with the ratio to cold.

Usage: `python benchmarks/object_store.py [--mib 256] [--small 200] [--models 50]
[--model-mib 2] [--repeats 3]`. Needs the test extras (moto).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promoter.model_store import saved_model_digest
from promoter.model_store.model_cache import CachedModelStore, ModelCache
from promoter.model_store.objects import DigestCache, ObjectModelStore


def median_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--model-mib", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint,
                      AWS_EC2_METADATA_DISABLED="true")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        prefix = "models/churn/1"
        s3.put_object(Bucket="bench", Key=f"{prefix}/saved_model.pb", Body=os.urandom(1 << 20))
        s3.put_object(Bucket="bench", Key=f"{prefix}/variables/variables.index", Body=b"i" * 999)
        with tempfile.TemporaryFile() as shard:
            for _ in range(args.mib):
                shard.write(os.urandom(1 << 20))
            shard.seek(0)
            s3.upload_fileobj(shard, "bench", f"{prefix}/variables/variables.data-00000-of-00001")
        for index in range(args.small):
            s3.put_object(Bucket="bench", Key=f"{prefix}/assets/a{index:04}", Body=b"x" * 100)
        print(f"version: {args.mib} MiB shard + {args.small + 2} small objects; moto on "
              f"loopback; median of {args.repeats}")

        with tempfile.TemporaryDirectory() as work:
            cache_dir = Path(work) / "digests"

            def cold() -> None:
                ObjectModelStore("s3://bench/models").get("churn", 1)

            store = ObjectModelStore("s3://bench/models", digest_cache=DigestCache(cache_dir))
            store.get("churn", 1)
            copies = iter(range(1000))

            def download() -> None:
                target = Path(work) / f"copy-{next(copies)}"
                store.copy_version(store.get("churn", 1), target)
                saved_model_digest(target)

            version = store.get("churn", 1)
            caches = iter(range(1000))

            def fetch_cold() -> None:
                index = next(caches)
                cached = CachedModelStore(store, ModelCache(Path(work) / f"models-{index}"))
                cached.copy_version(version, Path(work) / f"cold-{index}")
                saved_model_digest(Path(work) / f"cold-{index}")

            warm = CachedModelStore(store, ModelCache(Path(work) / "models-warm"))
            warm.copy_version(version, Path(work) / "warm-first")

            def fetch_warm() -> None:
                target = Path(work) / f"warm-{next(copies)}"
                warm.copy_version(version, target)
                saved_model_digest(target)

            cold_s = median_s(cold, args.repeats)
            copy_s = median_s(download, args.repeats)
            fetch_cold_s = median_s(fetch_cold, args.repeats)
            fetch_warm_s = median_s(fetch_warm, args.repeats)
            rows = [
                ("get, cold (read and digest everything)", cold_s),
                ("get, cached (same store: list only)",
                 median_s(lambda: store.get("churn", 1), args.repeats)),
                ("get, cached (new store, cache on disk)",
                 median_s(lambda: ObjectModelStore(
                     "s3://bench/models", digest_cache=DigestCache(cache_dir)).get("churn", 1),
                     args.repeats)),
                ("copy_version + digest of the copy", copy_s),
                ("evaluation fetch, model cache cold", fetch_cold_s),
                ("evaluation fetch, model cache warm", fetch_warm_s),
            ]
            for label, seconds in rows:
                print(f"  {label:44} {seconds * 1000:8.0f} ms")
            size = sum(o["Size"] for o in s3.list_objects_v2(
                Bucket="bench", Prefix=prefix + "/")["Contents"])
            print(f"  digest throughput, cold get: {size / cold_s / 1e6:8.1f} MB/s; "
                  f"copy_version + digest: {size / copy_s / 1e6:8.1f} MB/s "
                  f"({size / 1e6:.0f} MB)")
            print(f"  evaluation fetch warm / cold: {fetch_warm_s / fetch_cold_s:6.3f} x; "
                  f"warm / no cache (copy_version + digest): {fetch_warm_s / copy_s:6.3f} x")
            resync(s3, args, Path(work) / "resync-digests")
    finally:
        server.terminate()
        server.wait(timeout=30)


def resync(s3: Any, args: argparse.Namespace, cache_dir: Path) -> None:
    """A resync over `args.models` models: scan each and digest its newest version."""
    models = [f"m{index:02}" for index in range(args.models)]
    for model in models:
        base = f"fleet/{model}/1"
        s3.put_object(Bucket="bench", Key=f"{base}/saved_model.pb",
                      Body=os.urandom(64 << 10))
        s3.put_object(Bucket="bench", Key=f"{base}/variables/variables.index",
                      Body=b"i" * 999)
        s3.put_object(Bucket="bench",
                      Key=f"{base}/variables/variables.data-00000-of-00001",
                      Body=os.urandom(args.model_mib << 20))

    def one_pass(store: ObjectModelStore) -> None:
        for model in models:
            newest = store.scan_versions(model)[-1]
            store.get(model, newest.version)

    def cold() -> None:
        one_pass(ObjectModelStore("s3://bench/fleet"))

    warm_store = ObjectModelStore("s3://bench/fleet", digest_cache=DigestCache(cache_dir))
    one_pass(warm_store)
    cold_s = median_s(cold, args.repeats)
    warm_s = median_s(lambda: one_pass(warm_store), args.repeats)
    disk_s = median_s(lambda: one_pass(ObjectModelStore(
        "s3://bench/fleet", digest_cache=DigestCache(cache_dir))), args.repeats)
    print(f"resync of {args.models} models ({args.model_mib} MiB each): scan_versions + get "
          f"of the newest, median of {args.repeats}")
    for label, seconds in (("cold (no digest cache)", cold_s),
                           ("warm digest cache, same store", warm_s),
                           ("warm digest cache on disk, new store", disk_s)):
        print(f"  {label:44} {seconds * 1000:8.0f} ms  ({seconds / cold_s:6.3f} x cold, "
              f"{seconds / args.models * 1000:6.1f} ms per model)")


if __name__ == "__main__":
    main()
