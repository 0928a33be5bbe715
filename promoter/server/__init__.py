"""`promoter serve`: the HTTP service (webhooks, REST API, health, metrics) and the
reconcile scheduler behind it.

Endpoints (OpenAPI at `/docs` and `/openapi.json`):

| method and path | what | auth |
|---|---|---|
| `POST /webhooks/github` | GitHub deliveries, answered at once; reconciles run later | HMAC |
| `GET /api/v1/environments` | per environment: deployed model, open promotion with gates | none |
| `GET /api/v1/environments/{name}` | one of them (404 if unknown) | none |
| `GET /api/v1/promotions` | open promotion pull requests with their gates | none |
| `GET /api/v1/promotions/{number}` | one, with the evaluation report (Markdown) | none |
| `POST /api/v1/promotions/{number}/approve` | approve as the token's user (local forge) | token |
| `POST /api/v1/promotions/{number}/reject` | request changes as the token's user | token |
| `GET /healthz` | the process answers | none |
| `GET /readyz` | dry config loads from the repository, workers run; else 503 | none |
| `GET /metrics` | Prometheus text format, from this app's own registry | none |

Webhook answers: 202 `scheduled` (with the jobs) or `ignored` (with the reason: unknown event,
another repository, not a promotion); 200 `pong` and 200 `duplicate` (a redelivery of an id
already accepted: nothing is scheduled); 400 malformed JSON or payload shape (or JSON
nesting deeper than 64 levels, refused unparsed: `json_depth`); 401 missing or
bad signature (checked over the raw body before anything is parsed; only `sha256=`); 413 a
body over 25 MiB, refused while it streams in, before the signature is checked (every other
route: over 64 KiB; `promoter.server.limits`); 503 while shutting down (the id is not
remembered, so a redelivery works after the restart).

Auth of the REST API: reads are open (put the service behind your network policy or ingress
auth if the model names are sensitive). Approve/reject need `Authorization: Bearer <token>`,
and the review is recorded as the user the tokens file gives that token to
(`$PROMOTER_API_TOKENS_FILE` or `service.apiTokensFile`: `USER: sha256:<hex>` lines, see
`promoter.server.tokens`; `promoter token new USER` makes one). The body is optional; a
`"user"` in it other than the token's is refused with 403, so one token cannot act as
everyone. 401 for a missing or unknown token; without a tokens file they answer 403. The
policy's approver list and the no-self-approval rule still apply to the token's user (422
with the fix otherwise). The single shared `$PROMOTER_API_TOKEN` of earlier versions is
refused at start (exit 2).

Errors are `{"error": ..., "fix": ...}`: 404 unknown pull request or environment, 422 approval
refused by policy, 409 forge/git conflicts, 400 other bad input, 503 the dry config is broken
or a dependency failed. A bad request never gets a 500.

Reconciles run on `Scheduler` threads: one job at a time per environment branch, different
branches concurrently, a full resync (`PromotionService.reconcile`) alone, at start and every
`service.resyncIntervalSeconds`, after a discovery pass (`AutoProposer.run`) where promoter.yaml
lists `autoPropose` environments. Logs are JSON lines unless stderr is a terminal, with
`environment`, `pr`, `promotion`, `branch`, `delivery`, `event` fields where they apply; the
webhook secret is redacted from every line; the server holds no plain API token to leak, and
its logs name neither the tokens file nor its hashes (only a bad file's error at start names
it).

The app itself is `promoter.server.app.create_app`; what it runs on (the service, its
adapters, the scheduler, metrics, secrets) is chosen in one place, `promoter.wiring`
(`build_app` for a given service, `build_server` for `promoter serve`). Importing this package
imports nothing, so `promoter.server.answers` (the API's JSON models, also printed by
`promoter status --json`) comes without FastAPI.
"""
