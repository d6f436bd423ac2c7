from __future__ import annotations

import sys
from pathlib import Path

# tests/golden holds data plus the script that regenerates it from torch.
sys.path.insert(0, str(Path(__file__).parent))
