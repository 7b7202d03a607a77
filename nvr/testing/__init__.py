"""Test doubles that ship with the package, for nvr's own tests and for users' tests of
code built on nvr: ``replay.ReplayOpener`` (a deterministic camera replaying a file at its
timestamps, no threads), ``faults.FaultyDir`` (a sample-file directory that injects
``ENOSPC``/``EIO`` or a simulated crash at any step) and ``env.RecordingEnv`` (a ready
database and directory).

Not here: helpers only nvr's own suite needs (the RTSP camera, the browser, daemon and
HTTP helpers, frozen schemas): those live in ``tests/support``, which is not shipped.
Nothing in ``nvr`` imports this package (docs/design.md, "Layers and packages", enforced
by ``tests/unit/test_layers.py``); see docs/design.md, "Testing".
"""
