"""How this process was started, as a command a user can paste again (the resume hint).

``python cli.py attribute ...`` when run as the script, ``xai-bias attribute ...`` when run as the
console script, and, under a launcher (torchrun, ``accelerate launch``, ``python -m
torch.distributed.run``), the launcher's own command line in front — read from the parent
process, the launcher's agent, which is what started this rank.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

#: programs that start ranks of a data-parallel run
LAUNCHERS = ("torchrun", "accelerate", "torch.distributed.run", "torch.distributed.launch")


def _program(argv0: str) -> list[str]:
    name = Path(argv0).name
    if name in ("cli.py", "__main__.py") or name.endswith(".py"):
        return ["python", argv0 if name != "__main__.py" else "cli.py"]
    return [name or "xai-bias"]


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def launcher_command(script: str, pid: int | None = None) -> list[str]:
    """The launcher's command line up to and including ``script`` (as the launcher was given
    it), when a launcher started this process; [] otherwise. Looks at the parent process (the
    launcher's agent) and up to three above it (``accelerate launch`` runs torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return []
    pid = os.getppid() if pid is None else pid
    for _ in range(4):
        args = _cmdline(pid)
        names = [Path(a).name for a in args]
        if any(n in LAUNCHERS for n in names[:3]) and Path(script).name in names:
            start = next(i for i, n in enumerate(names) if n in LAUNCHERS)
            if names[start - 1:start] == ["-m"]:
                start -= 1
                args = ["python", *args[start:]]
                start = 0
            else:
                args = [names[start], *args[start + 1:]]
                start = 0
            return args[: args.index(next(a for a in args if Path(a).name == Path(script).name)) + 1]
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return []
        if pid <= 1:
            return []
    return []


def command_line(argv: Sequence[str], argv0: str | None = None) -> str:
    """The command that ran this process with ``argv`` (the subcommand and its flags)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    head = launcher_command(argv0) or _program(argv0)
    return shlex.join([*head, *argv])
