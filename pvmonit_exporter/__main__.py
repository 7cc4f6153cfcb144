"""`python -m pvmonit_exporter`."""

import sys

from pvmonit_exporter.commands.main import main

sys.exit(main())
