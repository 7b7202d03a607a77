"""Fixtures shared by all test packages.

The RTSP test-camera fixtures live in ``tests/support/rtsp.py`` and the browser fixtures
in ``tests/support/browser.py``; both are re-exported here so that every test can request
``rtsp_server``, ``rtsp_server_factory``, ``shared_rtsp_server``, ``browser``, ``page`` or
``artifact_dir``; the SeaweedFS (S3) fixtures ``seaweed`` and ``seaweed_factory`` live in
``tests/support/seaweed.py``.
"""

from tests.support.browser import artifact_dir, browser, page
from tests.support.rtsp import rtsp_server, rtsp_server_factory, shared_rtsp_server
from tests.support.seaweed import seaweed, seaweed_factory

__all__ = [
    "artifact_dir",
    "browser",
    "page",
    "rtsp_server",
    "rtsp_server_factory",
    "seaweed",
    "seaweed_factory",
    "shared_rtsp_server",
]
