"""Codec layer: H.264 and H.265 bitstreams as bytes, for ingest and mp4 alike.

``nal`` splits and joins NAL units (Annex B and length-prefixed framing, ``FrameBytes``);
``sps`` reads RBSPs (``BitReader``) and holds what both codecs' sequence parameter sets
give (``PictureFormat``); ``h264`` and ``h265`` parse their SPS and write
their ``avcC``/``hvcC`` boxes and codec strings; ``decoder_config`` reads such a record back
into parameter sets. Pure byte handling: nothing here imports ``av`` or ``trio``, does I/O
or keeps state. What belongs elsewhere: demuxing a camera (``nvr.ingest``), the ``.mp4``
boxes around a sample entry (``nvr.mp4``), storing entries (``nvr.db``).

Where it sits (docs/design.md, "Layers and packages"): above ``db``, below ``ingest`` and
``mp4``, which both use it and must not import each other. It imports one thing from
``db``: the ``VideoSampleEntry`` value type, which ``h264``/``h265`` fill in. The entry
stays in ``db`` rather than moving down here because it is the shape of a stored row
(the ``video_sample_entry`` table, whose ids recordings name): ``db`` owns, deduplicates
and serves entries to layers that never parse one (``web``, ``storage``), so ``db`` need
not know codecs exist, while the parsers need that one plain dataclass, not the database.
"""
