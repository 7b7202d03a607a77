"""Lowest layer: clocks, 90 kHz time, the thread seam and the error tree. Imports nothing of nvr."""
