"""Media files served from recordings: ``.mp4`` movies, ``.m4s`` media segments, init segments.

Every file is *virtual*: laid out from recordings' rows and indexes (its size and strong
ETag known at once), then produced by byte range in bounded chunks. The modules, each
building on the ones before it:

- ``boxes``: the ISO BMFF box writer (and a box-tree reader for debug dumps); only bytes.
- ``selection``: ``Segment``s of recordings and the frames selected from each.
- ``tables``: the sample tables generated only when a byte range asks (``stts``,
  ``stsz``, ``stss``, ``trun`` samples).
- ``movie_boxes``: the header boxes every kind shares (``ftyp``, ``mvhd``, a track down to
  its ``stbl``, ``stsd``, the edit list, the small sample tables).
- ``subtitles``: the ``ts=true`` text track.
- ``virtual``: ``VirtualFile`` (the layout, its ETag, reading by range) and
  ``plan_layout``.
- ``movie``: whole ``.mp4`` files (``build_mp4``/``plan_mp4``) and init segments
  (``build_init``).
- ``fragment``: media segments of recordings (``build_m4s``/``plan_m4s``) and of live
  frames (``build_fragment``).

What does not belong here: reading sample files (callers pass a ``Reader``; ``nvr.storage``
owns the files), HTTP (``nvr.web.view``, ``nvr.web.live``), codec parsing (``nvr.codec``).
The ``mp4`` layer reads the database's rows and indexes but never imports ``ingest``.
"""
