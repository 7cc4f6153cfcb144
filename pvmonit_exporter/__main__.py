"""`python -m pvmonit_exporter`."""

import sys

from pvmonit_exporter.cli import main

sys.exit(main())
