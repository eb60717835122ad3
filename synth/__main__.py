"""``python -m synth --out DIR --scale tiny|default|full --seed 0 [--diagnostics]``."""
import sys

from synth.generate import main

sys.exit(main())
