"""``python -m sensor`` runs the ``t1046-sensor`` command line."""

import sys

from sensor.cli import main

sys.exit(main())
