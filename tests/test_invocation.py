"""The resume hint repeats the command the user actually ran (issue 12 part 7)."""

from __future__ import annotations

import pytest

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from xai_bias.invocation import command_line

REPO = Path(__file__).resolve().parents[1]


def test_script_and_console_script():
    assert command_line(["attribute", "--out", "a b.h5"], "cli.py") == "python cli.py attribute --out 'a b.h5'"
    assert command_line(["attribute"], "/venv/bin/xai-bias") == "xai-bias attribute"


@pytest.mark.slow
def test_launcher_prefix_is_kept(tmp_path):
    """Under torchrun the hint starts with torchrun and its own flags (read from the agent)."""
    script = tmp_path / "cli.py"
    script.write_text("import sys\nfrom xai_bias.invocation import command_line\n"
                      "print('CMD', command_line(sys.argv[1:]))\n")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    out = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "1", str(script), "attribute", "--resume"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("CMD "))[4:]
    assert shlex.split(line) == ["torchrun", "--standalone", "--nproc_per_node", "1", str(script), "attribute",
                                 "--resume"]
