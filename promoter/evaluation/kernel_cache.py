"""Where and how numba caches the TFRecord decoder's compiled kernels.

Numba fixes a kernel's cache directory when its `@njit(cache=True)` decorator runs, that is,
when the kernel's module is imported. So every kernel module imports this one first (for
`kernel`, the decorator they use), and the choice below is made once, before any kernel exists.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba

_F = TypeVar("_F", bound=Callable[..., Any])

KERNEL_MODULES = ("kernel_cache", "example_wire", "tfrecord_framing", "example_parse",
                  "example_templates", "example_codec")
"""The modules of the decoder's kernels (in promoter/evaluation/)."""


def choose_cache_dir(here: Path = Path(__file__).parent, cache_home: Path | None = None
                     ) -> str | None:
    """Numba caches compiled kernels next to this file or in ~/.cache/numba and refuses to
    start when neither is writable (a read-only container without a home). Then compile into
    a private temporary directory: slower starts (about 10 s of compiling), but it works.
    Returns that directory, or None where numba's own choice stands."""
    if numba.config.CACHE_DIR:
        return None
    if cache_home is None:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for place in (here / "__pycache__", here, cache_home / "numba", cache_home):
        if place.exists() and os.access(place, os.W_OK):
            return None
    numba.config.CACHE_DIR = tempfile.mkdtemp(prefix="promoter-numba-")
    return numba.config.CACHE_DIR


choose_cache_dir()

BOUNDSCHECK = bool(numba.config.BOUNDSCHECK)
"""Whether numba checks every array index (NUMBA_BOUNDSCHECK=1, read when numba is imported).
The kernels' unaligned 8-byte loads then take a checked path too (`example_wire.load_u64`)."""


def sources_digest(here: Path = Path(__file__).parent) -> str:
    """sha256 of the source of every kernel module."""
    digest = hashlib.sha256()
    for name in KERNEL_MODULES:
        digest.update((here / f"{name}.py").read_bytes())
    return digest.hexdigest()


_SOURCES = sources_digest()


def kernel(function: _F) -> _F:
    """`numba.njit(nogil=True, cache=True)`, inlined into its callers (forceinline: the
    kernels are small functions that pass NamedTuples of arrays) and without numba's reference
    counting (`_nrt=False`: the kernels allocate nothing, and every array a NamedTuple carries
    would otherwise be counted up and down at every call, which made the parsing path three
    times slower), with the cached code tied to the source of every kernel module: numba
    checks only the function's own file before it loads cached code, and a kernel inlines
    the kernels it calls from the other modules, so after a change there it would load the
    old code. Where numba's cache has another shape than this expects, the kernel compiles
    without a cache (slower starts, never stale code)."""
    options = {"nogil": True, "forceinline": True, "_nrt": False}
    dispatcher = numba.njit(cache=True, **options)(function)
    index = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if index is None or not hasattr(index, "_source_stamp"):
        return numba.njit(**options)(function)  # type: ignore[no-any-return]
    index._source_stamp = (index._source_stamp, _SOURCES)
    return dispatcher  # type: ignore[no-any-return]
