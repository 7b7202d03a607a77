"""Motion analysis: the detector on the luma plane, per-second summaries, the on/off
event logic, and the per-camera analysis task that feeds them decoded pictures.

Pure modules (``detector``, ``events``, ``summary``) import neither ``trio`` nor ``av``;
``decode`` (PyAV) and ``task`` (trio) sit beside ``ingest``. docs/design.md, "Motion".
"""
