"""nvr: a network video recorder for RTSP cameras, built on trio.

See ``DESIGN.md`` (shared with the project) for the architecture; each subpackage's
docstring says which layer it is and what belongs in it.
"""

__version__ = "0.1.0"
