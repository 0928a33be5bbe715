"""Where an object store's layout is (`s3://bucket/prefix`, `gs://bucket/prefix`) and the
client that reads it: URL parsing, the fsspec filesystem with its timeouts and retries, and
the fix a failed request's error carries.

The clients are fsspec's `s3fs` (aiobotocore) and `gcsfs`, chosen over obstore (faster: about
2x reading a large object, 3x reading small ones, 15x to import, no dependencies) because
they take their credentials from the standard chains unchanged and both could be tested here
against real local servers; obstore's GCS store speaks the XML API, which no emulator on PyPI
serves, and it reads neither `STORAGE_EMULATOR_HOST` nor AWS profiles. The chains: botocore's
(`AWS_*` variables including `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_S3`, shared config and SSO
profiles, IRSA web identity, ECS and instance metadata) and google-auth's
(`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's, the metadata server); `STORAGE_EMULATOR_HOST`
points gcsfs at an emulator, which is then sent no credentials (as google-cloud-storage does).
Nothing here reads, keeps or logs a credential, and a URL carrying one is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from promoter.errors import ModelStoreError

SCHEMES = ("s3", "gs")
"""URL schemes of object stores: `s3://` (AWS S3 or an S3-compatible endpoint) and `gs://`."""

BLOCK_BYTES = 64 << 20
"""Bytes per ranged read. Measured on loopback against moto (256 MiB object): 8 MiB blocks
read 80 MiB/s, 32 MiB 125, 64 MiB 215; memory stays about two blocks per open object."""

CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection to the store before the attempt counts as failed."""
READ_TIMEOUT_S = 60.0
"""Seconds without a byte from the store before the attempt counts as failed: a 64 MiB
block needs at least 1.1 MB/s; a hung store never holds a resync or a pod start for ever."""
ATTEMPTS = 3
"""Attempts per S3 request (botocore's standard retry mode: throttling, 5xx, timeouts and
refused connections), with exponential backoff, before a ModelStoreError says what failed.
GCS: gcsfs's own 6 attempts, which it does not let a caller change."""
BODY_ATTEMPTS = 2
"""s3fs's own attempts around a request and the read of its body (a connection dropped
mid-object), each of them `ATTEMPTS` requests. So a hung store fails a read after at most
6 silent timeouts on S3 (6 attempts and backoff on GCS), about 6 minutes at the defaults:
never holds a resync or a pod start for ever."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    """Where a store's layout starts: `scheme://bucket/prefix` (prefix may be empty)."""

    scheme: str
    bucket: str
    prefix: str

    @property
    def root(self) -> str:
        """The fsspec path of the layout's root (`bucket/prefix`, no scheme)."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def url(self, *parts: str) -> str:
        """`scheme://bucket/prefix/part/…`, for messages and `ModelVersion.uri`."""
        return "/".join([f"{self.scheme}://{self.root}", *parts])


def is_object_store_url(url: str) -> bool:
    """True for `s3://…` and `gs://…`; everything else is a local path."""
    return urlsplit(url).scheme in SCHEMES


def parse_object_url(url: str) -> ObjectLocation:
    """Split `s3://bucket/prefix` or `gs://bucket/prefix`.

    Raises ModelStoreError for another scheme, a bad bucket name, and a URL with a user,
    password, query or fragment: fsspec would read `s3://KEY:SECRET@bucket` as credentials,
    and a credential must never be in promoter.yaml, a rendered manifest or a log."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ModelStoreError(f"{url!r} is not an object store URL",
                              fix="use s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    if "@" in parts.netloc or parts.query or parts.fragment or ";" in parts.netloc:
        raise ModelStoreError(
            f"the model store URL {parts.scheme}://… carries credentials or options",
            fix="give only scheme://BUCKET/PREFIX; credentials come from the environment "
                "(AWS_* variables, an AWS profile or role; GOOGLE_APPLICATION_CREDENTIALS or "
                "the metadata server) and an S3-compatible endpoint from AWS_ENDPOINT_URL")
    bucket = parts.netloc
    if not _BUCKET.match(bucket):
        raise ModelStoreError(f"{url!r}: {bucket!r} is not a bucket name",
                              fix="bucket names are 3-63 lowercase letters, digits, '-', "
                                  "'.' and '_'")
    prefix = parts.path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ModelStoreError(f"{url!r}: the prefix has an empty, '.' or '..' part",
                              fix="write the prefix as a/b/c")
    return ObjectLocation(parts.scheme, bucket, prefix)


def object_filesystem(scheme: str) -> Any:
    """An fsspec filesystem for `scheme` on the standard credential chains.

    Listings are never cached by fsspec (a version's objects change while it uploads, and
    promoter caches digests itself), and instances are not shared with other users of fsspec
    in the process. Every request has the timeouts and attempts above; a partial download
    never lands anywhere (`download` and the holdout cache check sizes, and writers rename
    only what they verified)."""
    if scheme == "s3":
        import s3fs  # lazily: aiobotocore is slow to import and local stores never need it

        s3 = s3fs.S3FileSystem(
            skip_instance_cache=True, use_listings_cache=False,
            config_kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                           "read_timeout": READ_TIMEOUT_S,
                           "retries": {"max_attempts": ATTEMPTS, "mode": "standard"}})
        s3.retries = BODY_ATTEMPTS  # s3fs's own attempts: an attribute, not an argument
        return s3
    if scheme == "gs":
        # gcsfs.core's filesystem, not the package's default export: that one probes every
        # bucket's type over gRPC first (for zonal buckets), which emulators do not serve.
        import aiohttp
        from gcsfs.core import GCSFileSystem

        token = "anon" if os.environ.get("STORAGE_EMULATOR_HOST") else None
        # gcsfs retries every request itself, 6 times with backoff up to 32 s (fixed in
        # gcsfs: its decorator binds the count when the class is defined).
        return GCSFileSystem(token=token, skip_instance_cache=True, use_listings_cache=False,
                             requests_timeout=aiohttp.ClientTimeout(
                                 sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S))
    raise ModelStoreError(f"no object store client for {scheme}://",
                          fix=f"use one of {', '.join(s + '://' for s in SCHEMES)}")

def credentials_fix(scheme: str) -> str:
    if scheme == "s3":
        return ("check the credentials promoter runs with (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the pod's role), AWS_ENDPOINT_URL for "
                "an S3-compatible store, and that they may list and read the bucket")
    return ("check the credentials promoter runs with (GOOGLE_APPLICATION_CREDENTIALS or the "
            "metadata server's service account; STORAGE_EMULATOR_HOST for an emulator) and "
            "that they may list and read the bucket")
