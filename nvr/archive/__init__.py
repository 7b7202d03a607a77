"""The archive tier: copies of recordings in S3-compatible object storage (issue 18).

What belongs here: the object-store seam and its S3 implementation (``client``), the
layout of objects in a bucket (``layout``), the uploader task (``uploader``). Not: SQL
(it calls the ``Database``), HTTP routes, reading cameras. A sibling of ``syncer``:
imports ``base``, ``db``, ``storage``. See docs/design.md, "Archive tier".
"""
