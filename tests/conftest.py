"""Fixtures shared by all test packages.

The RTSP test-camera fixtures live in ``tests/support/rtsp.py`` and the browser fixtures
in ``tests/support/browser.py``; both are re-exported here so that every test can request
``rtsp_server``, ``rtsp_server_factory``, ``shared_rtsp_server``, ``browser``, ``page`` or
``artifact_dir``; so are ``inline_seam`` (``tests/support/determinism.py``: the thread seam
inline) and the web tests' ``inline_web_threads`` and ``recorded`` (``tests/support/web.py``),
and the SeaweedFS (S3) fixtures ``seaweed`` and ``seaweed_factory``
(``tests/support/seaweed.py``). Hypothesis runs without its per-example deadline.
"""

from hypothesis import settings

from tests.support.browser import artifact_dir, browser, page
from tests.support.determinism import inline_seam
from tests.support.rtsp import rtsp_server, rtsp_server_factory, shared_rtsp_server
from tests.support.seaweed import seaweed, seaweed_factory
from tests.support.web import inline_web_threads, recorded

# Hypothesis' per-example deadline (200 ms) is a wall-clock bound: on a loaded machine
# examples took 286 ms and failed tests whose subject is correctness, not speed.
settings.register_profile("nvr", deadline=None)
settings.load_profile("nvr")

__all__ = [
    "artifact_dir",
    "browser",
    "inline_seam",
    "inline_web_threads",
    "page",
    "recorded",
    "rtsp_server",
    "rtsp_server_factory",
    "seaweed",
    "seaweed_factory",
    "shared_rtsp_server",
]
