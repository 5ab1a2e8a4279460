"""tox plugin of this project: find the pyenv interpreters without any shell set-up.

tox looks for ``python3.12`` and ``python3.13`` on PATH; a machine whose extra Pythons come
from pyenv has them under ``$(pyenv root)/versions/<x.y.z>/bin`` instead, which no shell
puts on PATH unless pyenv's shims are initialised. Adding those folders (newest patch
release first) lets ``tox -e py313-django61`` work on a fresh machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tox.plugin import impl


def _pyenv_bin_dirs() -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = root / "versions"
    if not versions.is_dir():
        return []
    found = [v for v in versions.iterdir() if re.fullmatch(r"\d+\.\d+\.\d+", v.name)]
    found.sort(key=lambda v: tuple(int(p) for p in v.name.split(".")), reverse=True)
    return [str(v / "bin") for v in found if (v / "bin").is_dir()]


@impl
def tox_add_option(parser) -> None:  # type: ignore[no-untyped-def]
    """Runs once when tox starts, before any interpreter is looked up."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    extra = [d for d in _pyenv_bin_dirs() if d not in path]
    os.environ["PATH"] = os.pathsep.join([*path, *extra])
