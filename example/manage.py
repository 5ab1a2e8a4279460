"""Django's command-line utility for the sample project.

Run as ``python -m example.manage <command>`` or ``python example/manage.py <command>``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # Run as a script, only example/ is on sys.path: the project root must be too.
    project_root = str(Path(__file__).resolve().parent.parent)
    if project_root not in sys.path:
        sys.path.insert(0, project_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

    from django.conf import settings
    from django.core.management import execute_from_command_line

    # SQLite and the disk cache live under var/, which a fresh checkout does not have.
    var_dir = getattr(settings, "VAR_DIR", None)
    if var_dir is not None:
        Path(var_dir).mkdir(parents=True, exist_ok=True)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
