"""Ingest layer: reading cameras and recording what they send.

- ``source``: what a source of frames is (``Packet``, ``Source``, ``Opener``, ``OpenOptions``).
- ``framing``: how a camera's packets become ``Packet``s (codec rules, parameter sets and
  sample entries, the start-of-run rules); pure, no ``av``.
- ``demuxer``: the PyAV demuxer, the only module in nvr that imports ``av`` to read RTSP
  and files; synchronous.
- ``pyav_source``: its trio side (``PyAvOpener``, ``PyAvSource``) and each session's
  reader thread, the one thread outside the ``run_blocking`` seam (the module says why).
- ``pacing``: when a caught-up camera reader pauses so frames gather.
- ``streamer``: one task per recorded stream: open, read, rotate recordings, reconnect.
- ``hub``: frames straight from the streamers to live viewers.

Codec parsing is ``nvr.codec``'s, writing sample files ``nvr.storage``'s, committing them
``nvr.syncer``'s; nothing here builds ``.mp4`` boxes (``nvr.mp4``, which never imports
``ingest``, nor ``ingest`` it).
"""
