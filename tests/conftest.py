"""Fixtures shared by all test packages.

The RTSP test-camera fixtures live in ``tests/support/rtsp.py`` and are re-exported here
so that every test can request ``rtsp_server``, ``rtsp_server_factory`` or
``shared_rtsp_server``.
"""

from tests.support.rtsp import rtsp_server, rtsp_server_factory, shared_rtsp_server

__all__ = ["rtsp_server", "rtsp_server_factory", "shared_rtsp_server"]
