"""``GET /metrics``: the daemon's Prometheus metrics (``nvr.ops.metrics``), in the text format.

Served only on binds with ``metrics = true`` (to anyone who reaches such a bind: scrapers
have no session); elsewhere the path does not exist (404). Free disk space is read just
before each scrape, off the event loop.
"""

from __future__ import annotations

from quart import Blueprint, Response

from nvr.base import errors
from nvr.ops.metrics import CONTENT_TYPE
from nvr.web.context import ctx

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def metrics() -> Response:
    c = ctx()
    if c.metrics is None or not c.bind.metrics:
        raise errors.NotFound("metrics are not served on this bind (see `metrics` in the config)")
    await c.metrics.refresh_disk_space()
    return Response(c.metrics.exposition(), content_type=CONTENT_TYPE)
