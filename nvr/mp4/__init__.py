"""Virtual ``.mp4`` files: ``boxes`` (ISO BMFF box writer and reader) and ``file`` (whole
movies, media segments and init segments built from recording indexes, served by range)."""
