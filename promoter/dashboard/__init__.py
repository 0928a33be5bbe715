"""The dashboard: pages for release managers, served by `promoter serve` beside the REST API.

- `/`: the pipelines: per pipeline of environments (the `promotesFrom` graph), what each
  runs, its rollout health, the open promotion with every gate's verdict; live.
- `/promotions/{number}`: one promotion: gates, reviews, the evaluation report with its
  plots, the digests; approve or reject on the local forge, a link to the PR on GitHub.
- `/history`, `/dora`: merges and rollbacks per environment; DORA metrics.
- `/login`, `/logout`: a session from a REST API token.
- `/events`: server-sent events, `changed` when a promotion may have moved.

Why server-rendered pages (Jinja2) and not a single-page app: what a page shows is what the
REST API answers, from the same service calls (`promoter.promotion.service`), rendered where
the data is; nothing is computed twice, nothing must be built or downloaded (air-gapped
clusters), and a page works with JavaScript off except for its live updates. The plots are
SVG drawn on the server (`plots`, which says why matplotlib).

Layers: `views` is pure (service values in, page values out); `plots` draws; `sessions` and
`feed` keep the server's little state; `routes` is the FastAPI adapter. `promoter.wiring`
installs it on the app `promoter.server.app.create_app` builds.
"""
