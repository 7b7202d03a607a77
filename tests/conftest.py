"""Fixtures shared by all test packages.

The RTSP test-camera fixtures live in ``tests/support/rtsp.py`` and the browser fixtures
in ``tests/support/browser.py``; both are re-exported here so that every test can request
``rtsp_server``, ``rtsp_server_factory``, ``shared_rtsp_server``, ``browser``, ``page`` or
``artifact_dir``.
"""

from tests.support.browser import artifact_dir, browser, page
from tests.support.rtsp import rtsp_server, rtsp_server_factory, shared_rtsp_server

__all__ = [
    "artifact_dir",
    "browser",
    "page",
    "rtsp_server",
    "rtsp_server_factory",
    "shared_rtsp_server",
]
