"""``python -m glassformer.cli``: what torchrun launches (``torchrun ... -m glassformer.cli train ...``)."""

import sys

from glassformer.cli import main

sys.exit(main())
