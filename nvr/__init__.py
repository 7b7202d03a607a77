"""nvr: a network video recorder for RTSP cameras, built on trio.

The design is ``docs/design.md`` in the repository (its section "Layers and packages"
places every package and module), the HTTP API ``docs/api.md``. Each subpackage's
docstring says which layer it is and what belongs in it.
"""

__version__ = "0.1.0"
