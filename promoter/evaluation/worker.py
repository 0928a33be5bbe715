"""The evaluation worker: `python -m promoter.evaluation.worker`, run by `evaluate.py`.

Reads one JSON request on stdin, loads the SavedModels, streams the holdout through them in
batches, and writes one JSON response on stdout: each model's signature and merged
`BinaryClassificationStats`, or a typed error. Only the JSON response goes to stdout: the
worker moves file descriptor 1 to stderr before TensorFlow loads, so nothing a model or
TensorFlow prints can corrupt the response.

Progress lines `promoter-worker: <stage>` on stderr let the parent say what the worker was
doing when it crashed or ran out of time.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from promoter.errors import BadInputError, ModelLoadError
from promoter.evaluation.holdout import HoldoutReader, columns_for, feed_inputs
from promoter.evaluation.metrics import BinaryClassificationStats, check_scores
from promoter.evaluation.protocol import PROTOCOL, STAGE_PREFIX


def run(request: dict[str, Any], *, progress: TextIO) -> dict[str, Any]:
    """Evaluate the request's models on its holdout; return the response's payload.

    Raises BadInputError subclasses for bad models or holdouts (the caller reports them).
    """
    from promoter.evaluation.scoring import load_model  # imports TensorFlow lazily

    def stage(text: str) -> None:
        progress.write(f"{STAGE_PREFIX}{text}\n")
        progress.flush()

    if request.get("protocol") != PROTOCOL:
        raise ModelLoadError(f"evaluation worker protocol {request.get('protocol')!r} is not "
                             f"{PROTOCOL}", fix="run the same promoter version in both processes")
    holdout = Path(request["holdout"])
    threshold = float(request["threshold"])
    models = {}
    for spec in request["models"]:
        label = f"the {spec['role']} model at {spec['path']}"
        stage(f"loading {label}")
        models[spec["role"]] = load_model(Path(spec["path"]), signature=spec["signature"],
                                          output=spec.get("output"), label=label)

    columns = [c for role, m in models.items() for c in columns_for(m.info, model=f"the {role}")]
    reader = HoldoutReader(holdout, label_column=request["labelColumn"], columns=columns,
                           batch_size=int(request.get("batchSize", 1024)))
    parts: dict[str, list[BinaryClassificationStats]] = {role: [] for role in models}
    seconds = dict.fromkeys(models, 0.0)
    for batch in reader:
        for role, model in models.items():
            stage(f"scoring {holdout} (lines {batch.lines[0]}-{batch.lines[-1]}) with "
                  f"{model.label}")
            feeds = feed_inputs(model.info, batch, model=f"the {role}", source=holdout)
            started = time.perf_counter()
            scores = model.score(feeds)
            seconds[role] += time.perf_counter() - started
            check_scores(scores, who=model.label, lines=batch.lines)
            parts[role].append(
                BinaryClassificationStats.from_batch(batch.labels, scores, threshold=threshold))
    stage("writing the result")
    return {
        "holdout": {"digest": reader.digest, "rows": reader.rows},
        "models": {
            role: {
                "signature": model.info.to_json_dict(),
                "stats": BinaryClassificationStats.merge_all(
                    parts[role], threshold=threshold).to_json_dict(),
                "seconds": seconds[role],
            }
            for role, model in models.items()
        },
    }


def main() -> int:
    """Entry point; always exits 0 after writing a response, so a non-zero exit (or a signal)
    means the worker crashed."""
    response_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (TensorFlow, the model's own ops) go to stderr from here on
    with os.fdopen(response_fd, "w", encoding="utf-8") as response_stream:
        response: dict[str, Any] = {"protocol": PROTOCOL}
        try:
            request = json.loads(sys.stdin.read())
            response |= {"ok": True, **run(request, progress=sys.stderr)}
        except BadInputError as exc:
            response |= {"ok": False, "error": {"type": type(exc).__name__,
                                                "message": exc.message, "fix": exc.fix}}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            response |= {"ok": False, "error": {
                "type": "internal", "message": f"{type(exc).__name__}: {exc}", "fix": None}}
        json.dump(response, response_stream)
        response_stream.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
