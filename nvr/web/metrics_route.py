"""``GET /metrics``: the daemon's Prometheus metrics (``nvr.metrics``), in the text format.

Served only on binds with ``metrics = true`` (to anyone who reaches such a bind: scrapers
have no session); elsewhere the path does not exist (404). Free disk space is read just
before each scrape, off the event loop.
"""

from __future__ import annotations

from quart import Blueprint, Response, current_app

from nvr.base import errors
from nvr.ops.metrics import CONTENT_TYPE
from nvr.web.app import WebContext

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def metrics() -> Response:
    ctx: WebContext = current_app.config["nvr"]
    if ctx.metrics is None or not ctx.bind.metrics:
        raise errors.NotFound("metrics are not served on this bind (see `metrics` in the config)")
    await ctx.metrics.refresh_disk_space()
    return Response(ctx.metrics.exposition(), content_type=CONTENT_TYPE)
