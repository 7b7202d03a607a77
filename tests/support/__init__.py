"""Helpers for nvr's own test suite only (not shipped): the GStreamer RTSP camera, the
browser, the daemon, HTTP and process helpers, media inspection, recorded fixtures, the
frozen schemas, the repository's paths, the inline thread seam and the tests' epoch.

Test doubles that users' tests may want too (``ReplayOpener``, ``FaultyDir``,
``RecordingEnv``) ship in ``nvr.testing`` instead (docs/design.md, "Testing").
"""
