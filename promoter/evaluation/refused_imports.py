"""The packages the evaluation worker refuses to import, and the import hook that refuses them.

Apart from `sandbox` because it is no kernel mechanism: it only keeps code out of the
worker's interpreter (start-up time, and Keras's deserialisation code near an untrusted
model), and it must be installed before `import tensorflow` whether or not Landlock and
seccomp are available. `sandbox` re-exports both names, where the worker and its tests
name them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.machinery import ModuleSpec

REFUSED_MODULES = ("keras", "tf_keras", "sklearn")
"""Packages the worker never imports. `import tensorflow` imports Keras eagerly (which imports
scikit-learn for its wrappers): about a third of the worker's start-up, measured in
benchmarks/fixed_cost.py. Scoring needs neither: `tf.saved_model.load` recreates a Keras
export as generic TensorFlow objects with its signatures, and TensorFlow imports Keras inside
`try: ... except ImportError`. Refusing them also keeps Keras's deserialisation code (which a
SavedModel's metadata could steer) out of the process that runs an untrusted model."""


class _RefusingLoader:
    """A loader whose every module fails to import, with a message saying why."""

    def create_module(self, spec: ModuleSpec) -> None:
        raise ImportError(f"{spec.name} is not imported in the evaluation worker "
                          "(promoter.evaluation.refused_imports.REFUSED_MODULES)", name=spec.name)

    def exec_module(self, module: object) -> None:  # never reached: create_module raises
        raise ImportError("refused")


class _RefusingFinder:
    def __init__(self, packages: Iterable[str]) -> None:
        self._packages = frozenset(packages)

    def find_spec(self, name: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        if name.partition(".")[0] not in self._packages:
            return None
        # origin None: `importlib.util.find_spec` callers (TensorFlow's lazy Keras loader)
        # find no directory and carry on without it.
        return ModuleSpec(name, _RefusingLoader())  # type: ignore[arg-type]


def refuse_imports(packages: Iterable[str]) -> None:
    """Make every later import of `packages` (and their submodules) raise ImportError in this
    process. Modules imported already are left as they are."""
    sys.meta_path.insert(0, _RefusingFinder(packages))
