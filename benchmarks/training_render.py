"""What a JobSet environment costs to render, beside a TFJob one (`training.kind`).

Each run is a fresh process (as `promoter render`, `propose` and `validate` are) that loads the
example's dry source and renders one environment, schema validation included: `dev` (a TFJob,
validated against the Kubeflow CRD) and `staging` (a JobSet, validated against JobSet's much
larger CRD, whose embedded Job and Pod schemas are parsed on first use). Runs alternate between
the two, so both see the same load on the machine; it prints the median wall time of each, the
ratio, and the median of a second render in the same process (the CRDs then cached).

Usage: `python benchmarks/training_render.py [--repeats 7]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.domain.model_versions import ModelVersion
from promoter.render import render_environment
root = Path(sys.argv[2])
loaded = load_settings(root / "promoter.yaml")
dry = load_dry_config(DirectorySource(root), loaded.settings)
version = ModelVersion(name="churn", version=3, digest="sha256:" + "ab" * 32, uri="/m")
def render():
    return render_environment(dry.templates, environment=dry.environment(sys.argv[1]),
                              model=loaded.settings.model("churn"), version=version)
ready = time.perf_counter()
render()
first = time.perf_counter()
render()
second = time.perf_counter()
print(json.dumps({"first": first - ready, "second": second - first, "total": first - start}))
"""


def run(env: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, env, str(REPO)], cwd=REPO,
                         capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"dev": [], "staging": []}
    for _ in range(args.repeats):
        for env in runs:
            runs[env].append(run(env))
    median = {env: {key: statistics.median(r[key] for r in results)
                    for key in ("first", "second", "total")}
              for env, results in runs.items()}
    for env, kind in (("dev", "TFJob"), ("staging", "JobSet")):
        m = median[env]
        print(f"{env:8} ({kind:6}): first render {m['first'] * 1000:7.1f} ms, second "
              f"{m['second'] * 1000:6.1f} ms, process to first render {m['total']:.2f} s")
    first = median["staging"]["first"] / median["dev"]["first"]
    second = median["staging"]["second"] / median["dev"]["second"]
    print(f"first render, JobSet / TFJob: {first:.2f}x; second render: {second:.2f}x "
          f"(medians of {args.repeats} runs each, alternated)")


if __name__ == "__main__":
    main()
