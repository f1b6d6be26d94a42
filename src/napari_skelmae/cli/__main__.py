"""``python -m napari_skelmae.cli ...`` (also what ``torchrun -m napari_skelmae.cli`` runs)."""

import sys

from . import main

sys.exit(main())
