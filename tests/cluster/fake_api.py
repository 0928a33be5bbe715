"""A fake Kubernetes API server on loopback for the real `kubernetes` client.

It serves `GET` and `PATCH` (JSON merge patch) of namespaced objects at
`/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>` (and the core group's at
`/api/v1/namespaces/…`, put with group ""), answering 404 with a
`Status` object like the real API server. Every request is also recorded as the API server's
authorizer sees it (`audit`: verb, API group, resource, namespace, name), so a test can hold the
RBAC rules promoter ships against what it really asks for. An object may be *scripted*: a list
of snapshots, one per GET (the last repeats), so one test can walk a rollout through its
states as a controller would. Every snapshot is checked with `validator` when it is stored
(tests pass `validate_crd_object`), unless stored with `validate=False` to serve a malformed
object.

    with FakeKubernetesApi(validator=validate_crd_object) as api:
        api.put(ref, [pending, progressing, healthy])
        reader = KubernetesClusterReader.for_host(api.url)
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from promoter.cluster import ObjectRef

_PATH = re.compile(r"^/(?:apis/(?P<group>[^/]+)|api)/(?P<version>[^/]+)/namespaces/"
                   r"(?P<namespace>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/?]+)$")

Key = tuple[str, str, str, str, str]

_VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete", "POST": "create"}
"""The RBAC verb of a request for one named object, as the API server's RequestInfo maps it
(a GET without a name would be `list`, with `?watch` `watch`: this fake serves neither)."""


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request, in the terms of an RBAC rule."""

    verb: str
    group: str
    """API group ("" for the core group)."""
    resource: str
    namespace: str
    name: str


class FakeKubernetesApi:
    """The API server's custom-object endpoints, in memory, on 127.0.0.1:<ephemeral>."""

    def __init__(self, *, validator: Callable[[Mapping[str, Any]], None]) -> None:
        self._validator = validator
        self._lock = threading.Lock()
        self._scripts: dict[Key, list[Any]] = {}
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request, in order."""
        self.audit: list[ApiRequest] = []
        """Every request as RBAC sees it, in order (also those answered 404 or refused)."""
        self._failures: dict[Key, int] = {}
        self.patches: list[tuple[str, str, Any]] = []
        """(path, content type, body) of every PATCH."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKubernetesApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- test-facing --------------------------------------------------------------------------

    def put(self, ref: ObjectRef, objects: Mapping[str, Any] | bytes | Sequence[Any], *,
            validate: bool = True) -> None:
        """Serve `objects` (one object, or a script of snapshots, one per GET) at `ref`."""
        script = [objects] if isinstance(objects, Mapping | bytes) else list(objects)
        if validate:
            for snapshot in script:
                self._validator(snapshot)
        with self._lock:
            self._scripts[_key(ref)] = [copy.deepcopy(s) for s in script]

    def fail(self, ref: ObjectRef, code: int) -> None:
        """Answer every request for `ref` with HTTP `code` (e.g. 500, 403) from now on."""
        with self._lock:
            self._failures[_key(ref)] = code

    def current(self, ref: ObjectRef) -> Any:
        """What the next GET of `ref` returns (patches applied)."""
        with self._lock:
            return copy.deepcopy(self._scripts[_key(ref)][0])

    def gets(self, ref: ObjectRef) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and path == ref.path)

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, key: Key) -> Any:
        with self._lock:
            script = self._scripts.get(key)
            if script is None:
                return None
            current = script[0]
            if len(script) > 1:
                script.pop(0)
            return copy.deepcopy(current)

    def _patch(self, key: Key, body: Any) -> Any:
        with self._lock:
            script = self._scripts.get(key)
            if script is None:
                return None
            # A patch changes the object from now on, in every later snapshot too.
            script[:] = [_merge_patch(snapshot, body) for snapshot in script]
            for snapshot in script:
                self._validator(snapshot)
            return copy.deepcopy(script[0])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"api": self})


class _Handler(BaseHTTPRequestHandler):
    """One request to the fake; `api` is set on the subclass each server gets."""

    api: FakeKubernetesApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows the assertions, not an access log

    def do_GET(self) -> None:
        self.api.requests.append(("GET", self.path))
        self._audit("GET")
        key = self._key()
        if key is None:
            return
        obj = self.api._get(key)
        if obj is None:
            self._not_found(key)
        elif isinstance(obj, bytes):
            self._send(HTTPStatus.OK, obj)
        else:
            self._send(HTTPStatus.OK, json.dumps(obj).encode())

    def do_PATCH(self) -> None:
        self.api.requests.append(("PATCH", self.path))
        self._audit("PATCH")
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        content_type = self.headers.get("Content-Type", "")
        self.api.patches.append((self.path, content_type, body))
        key = self._key()
        if key is None:
            return
        if content_type != "application/merge-patch+json":
            self._status(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                         f"only merge patches here, not {content_type}")
            return
        obj = self.api._patch(key, body)
        if obj is None:
            self._not_found(key)
        else:
            self._send(HTTPStatus.OK, json.dumps(obj).encode())

    def _audit(self, method: str) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:  # not an API path RBAC would authorize as a resource
            return
        self.api.audit.append(ApiRequest(
            verb=_VERBS[method], group=match["group"] or "", resource=match["plural"],
            namespace=match["namespace"], name=match["name"]))

    def _key(self) -> Key | None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._status(HTTPStatus.NOT_FOUND, f"no route for {self.path}")
            return None
        key = (match["group"] or "", match["version"], match["namespace"], match["plural"],
               match["name"])
        failure = self.api._failures.get(key)
        if failure is not None:
            self._status(HTTPStatus(failure), "scripted failure")
            return None
        return key

    def _not_found(self, key: Key) -> None:
        group, _, _, plural, name = key
        self._status(HTTPStatus.NOT_FOUND,
                     f'{plural}.{group} "{name}" not found', reason="NotFound")

    def _status(self, code: HTTPStatus, message: str, reason: str = "") -> None:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                  "status": "Failure", "message": message,
                  "reason": reason or code.phrase, "code": int(code)}
        self._send(code, json.dumps(status).encode())

    def _send(self, code: HTTPStatus, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _key(ref: ObjectRef) -> Key:
    return (ref.group, ref.version, ref.namespace, ref.plural, ref.name)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out
