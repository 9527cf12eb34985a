"""Test-suite set-up shared by every folder.

Test modules are imported with ``--import-mode=importlib`` (see pyproject.toml),
so two folders may both have a ``test_cli.py``. Each folder's helper modules
(``mapkit``, ``attachkit``, ...) are imported by plain name, so every test
folder is put on ``sys.path`` here; helper module names must stay unique.
"""

import pathlib
import sys

_HERE = pathlib.Path(__file__).parent
for _folder in sorted(p for p in _HERE.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
