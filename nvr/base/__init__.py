"""Lowest layer: what every other layer uses, and nothing domain-specific.

What belongs here: clocks (``clock.py``, the only place time is read), 90 kHz time and
durations (``time90k.py``), sizes in bytes (``units.py``), the one thread seam
(``blocking.py``), the descriptor budget (``descriptors.py``) and the error tree with its
mapping helpers (``errors.py``). Not here:
anything that knows about recordings, cameras, SQL or files. Imports nothing of nvr.
"""
