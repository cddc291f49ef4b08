"""Byte code for unibatch's own modules before anything is timed.

pip compiles a package's modules when it installs it, so users start from byte code. A
checkout installed with `pip install -e` gets byte code only as Python writes it on first
import, which `PYTHONDONTWRITEBYTECODE` (set on some CI machines) forbids: every process
would then compile the package from source, about 0.1-0.2 s of start-up users never pay.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import unibatch


def compile_unibatch() -> None:
    """Write the byte code of every unibatch module (a no-op where it is up to date)."""
    compileall.compile_dir(Path(unibatch.__file__).parent, quiet=1)
