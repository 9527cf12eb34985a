import sys

from pybpf.cli import main

sys.exit(main())
