"""``python -m tollgate``."""

import sys

from tollgate._cli import main

sys.exit(main())
