"""`python -m registry` is `camera-registry`."""

import sys

from registry.cli import main

sys.exit(main())
