"""The command itself: its version and its shell completion (argcomplete)."""

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tis_ray.cli import main

TIS_RAY = Path(sys.executable).parent / "tis-ray"  # the console script pip installed beside this interpreter


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"tis-ray {metadata.version('tis-ray')}\n"


def complete(line: str) -> list[str]:
    """Return what the installed tis-ray offers to complete `line` (the cursor at its end), as bash asks it."""
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_SUPPRESS_SPACE": "1"}
    read, write = os.pipe()
    os.set_inheritable(write, True)
    # argcomplete answers on file descriptor 8 (and writes debug output to 9)
    done = subprocess.run(["bash", "-c", f'"{TIS_RAY}" 8>&{write} 9>/dev/null'], env=env, pass_fds=(write,),
                          capture_output=True, timeout=60)
    os.close(write)
    with os.fdopen(read) as answer:
        offered = answer.read()
    assert done.returncode == 0, done.stderr
    return [word.strip() for word in offered.split("\n") if word.strip()]


@pytest.mark.skipif(not TIS_RAY.exists(), reason="tis-ray is not installed beside this interpreter")
def test_the_shell_completes_commands_and_options():
    assert complete("tis-ray sw") == ["sweep"]
    assert complete("tis-ray sweep --dry") == ["--dry-run"]
    assert set(complete("tis-ray re")) == {"report"}
    assert "--baseline" in complete("tis-ray report run --b")
