"""``python -m nvr``: the same as the ``nvr`` command."""

import sys

from nvr.cli import main

sys.exit(main())
