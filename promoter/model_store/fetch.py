"""`promoter-fetch-model`: put exactly the promoted version where TF Serving will read it.

TF Serving checks no digest: pointed at a bucket it serves whatever bytes are there when a pod
starts, which need not be the bytes promoter evaluated and pinned. The serving Deployment
therefore runs this command as an init container: it copies `<from>/<version>` (an `s3://` or
`gs://` model base path, or a directory mounted into the pod) into `<into>/<version>` on an
emptyDir, digests the copy with the one digest definition (`digest.py`), and exits non-zero
unless it is the pinned digest, so the pod never starts TF Serving on other bytes; TF Serving
then reads only the emptyDir. The copy is made under a temporary name and renamed into place
only once verified, and is left read-only. An init container runs again when the pod
restarts: a verified copy already there is checked again and kept.

Exit status: 0 verified; 1 the bytes are not the pinned ones (or could not be read, e.g.
credentials); 2 bad arguments, or no such version at `--from`. Credentials come from the
standard chains (see `object_clients.py`), typically the pod's service account.

    promoter-fetch-model --from s3://models/churn --version 3 \\
        --digest sha256:… --into /verified-models/churn
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from promoter.domain.model_versions import ModelVersion
from promoter.errors import BadInputError, ModelStoreError
from promoter.model_store.digest import saved_model_digest, walk_files
from promoter.model_store.local import LocalModelStore
from promoter.model_store.model_cache import make_read_only, remove_tree
from promoter.model_store.port import DigestMismatchError, ModelStore, VersionNotFoundError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def fetch_version(source: str, version: int, *, digest: str, into: Path,
                  store: ModelStore | None = None) -> Path:
    """Copy version `version` of the model at `source` (a model base path: `<store>/<model>`)
    into `into/<version>` and return that directory, verified to have `digest`.

    Raises BadInputError for a malformed digest, ModelStoreError when the version cannot be
    read (a missing version: exit 2) and DigestMismatchError when it is not the pinned one
    (nothing is left at the destination then). `store` overrides the store `source` names
    (tests)."""
    if not _DIGEST.match(digest):
        raise BadInputError(f"--digest {digest!r} is not sha256: and 64 lowercase hex digits",
                            fix="pass the digest the rendered manifests pin (${model.digest})")
    root, _, model = source.rstrip("/").rpartition("/")
    if not root or not model:
        raise BadInputError(f"--from {source!r} is not <store>/<model>",
                            fix="pass ${serving.modelBasePath}, e.g. s3://models/churn")
    destination = into / str(version)
    if destination.is_dir() and saved_model_digest(destination) == digest:
        return destination  # this pod's earlier run verified it
    remove_tree(destination)
    partial = into / f".{version}.partial"
    if partial.exists():
        remove_tree(partial)  # a run that was killed half-way
    into.mkdir(parents=True, exist_ok=True)
    store = store if store is not None else _open(root)
    pinned = ModelVersion(name=model, version=version, digest=digest,
                          uri=_version_uri(root, model, version))
    try:
        store.copy_version(pinned, partial)
    except VersionNotFoundError as exc:
        remove_tree(partial)
        if "://" not in root:
            raise VersionNotFoundError(
                exc.message, fix=f"nothing is mounted at {root} in this pod: mount the model "
                                 "store's volume there, or set serving.modelBaseUri to the "
                                 "store's s3:// or gs:// URL") from exc
        raise
    except ModelStoreError:
        remove_tree(partial)
        raise
    found = saved_model_digest(partial)
    if found != digest:
        remove_tree(partial)
        raise DigestMismatchError(
            f"{pinned.uri} has digest {found}, but the promotion pinned {digest}: refusing "
            "to serve it",
            fix="the store's copy changed after promoter evaluated it (or --from names "
                "another store): restore the evaluated bytes, or promote a new version")
    os.rename(partial, destination)
    make_read_only(destination)  # TF Serving, whatever its user, reads; nothing rewrites
    return destination


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; returns the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="promoter-fetch-model",
        # No abbreviations: `--dig sha256:…` must not stand for --digest (the render rule
        # in promoter/render/delivery_rules.py allows exactly the four flags, spelt out).
        allow_abbrev=False,
        description="Copy one model version from the model store and verify its digest "
                    "(the init container of promoter's serving Deployment).")
    parser.add_argument("--from", dest="source", required=True,
                        help="the model's base path: <store>/<model> (s3://, gs:// or a "
                             "directory)")
    parser.add_argument("--version", type=int, required=True, help="the pinned version")
    parser.add_argument("--digest", required=True, help="the pinned sha256: digest")
    parser.add_argument("--into", type=Path, required=True,
                        help="where TF Serving reads the model (<dir>/<version> is written)")
    args = parser.parse_args(argv)
    try:
        path = fetch_version(args.source, args.version, digest=args.digest, into=args.into)
    except VersionNotFoundError as exc:
        print(f"promoter-fetch-model: {exc}", file=sys.stderr)
        return 2
    except ModelStoreError as exc:
        # A mismatch, or the store failed (credentials, network): 1, which a pod restart
        # may cure for the latter; never 0.
        print(f"promoter-fetch-model: {exc}", file=sys.stderr)
        return 1
    except BadInputError as exc:
        print(f"promoter-fetch-model: {exc}", file=sys.stderr)
        return exc.exit_code
    files = walk_files(path)
    print(f"promoter-fetch-model: {args.source.rstrip('/')}/{args.version} -> {path}: "
          f"{len(files)} files, {sum(st.st_size for _, st in files)} bytes, {args.digest} "
          "verified", file=sys.stderr)
    return 0


def _open(root: str) -> ModelStore:
    if "://" not in root:
        return LocalModelStore(Path(root))
    from promoter.model_store.objects import ObjectModelStore  # lazily, as in wiring

    return ObjectModelStore(root)


def _version_uri(root: str, model: str, version: int) -> str:
    if "://" not in root:
        return str(Path(root) / model / str(version))
    from promoter.model_store.objects import parse_object_url

    return parse_object_url(root).url(model, str(version))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
