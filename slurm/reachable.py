"""Is SLURM there, with accounting, and does it have the partition asked for?

Asked once, up front, with short timeouts: a missing ``sbatch`` or a dead ``slurmctld`` must be
one clear sentence (that suggests ``--cluster local``), not a hang or a traceback, and without
``sacct`` submitit cannot tell a dead job from a pending one, so it would wait forever.
"""

from __future__ import annotations

import shutil
import subprocess

from algobench.errors import AlgobenchError

CLUSTERS = ("slurm", "local", "debug")
PROBE_TIMEOUT_SEC = 10.0
LOCAL_HINT = "use --cluster local to run the same jobs on this machine"


def _ask(command: list[str], timeout_sec: float) -> tuple[bool, str]:
    """(answered with exit status 0, stdout or the last line of the complaint)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_sec)
    except subprocess.TimeoutExpired:
        return False, f"{command[0]} did not answer within {timeout_sec:.0f} s"
    except OSError as error:
        return False, f"{command[0]}: {error.strerror}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        return False, last if last.startswith(f"{command[0]}:") else f"{command[0]}: {last}"
    return True, done.stdout


def slurm_unreachable_reason(timeout_sec: float = PROBE_TIMEOUT_SEC) -> str | None:
    """Why SLURM cannot run and follow jobs from here, or None when it can."""
    missing = [tool for tool in ("sbatch", "sinfo", "sacct", "scancel") if shutil.which(tool) is None]
    if missing:
        return f"no SLURM client here ({', '.join(missing)} not on PATH)"
    ok, answer = _ask(["sinfo", "-h", "-o", "%P"], timeout_sec)
    if not ok:
        return f"SLURM is not reachable ({answer})"
    ok, answer = _ask(["sacct", "-n", "-X", "-S", "now", "-o", "JobID"], timeout_sec)
    if not ok:
        return f"SLURM accounting is off or unreachable ({answer}); job states come from sacct"
    return None


def partitions(timeout_sec: float = PROBE_TIMEOUT_SEC) -> list[str]:
    """The cluster's partitions, the default one first (sinfo marks it with '*')."""
    ok, answer = _ask(["sinfo", "-h", "-o", "%P"], timeout_sec)
    if not ok:
        raise AlgobenchError(f"SLURM is not reachable ({answer}); {LOCAL_HINT}")
    names = [line.strip() for line in answer.splitlines() if line.strip()]
    names.sort(key=lambda name: not name.endswith("*"))
    return [name.rstrip("*") for name in dict.fromkeys(names)]


def check_cluster(cluster: str, partition: str | None = None) -> None:
    """Fail early, and clearly, when the cluster asked for cannot run the jobs."""
    if cluster not in CLUSTERS:
        raise AlgobenchError(f"unknown cluster {cluster!r}; choose one of {', '.join(CLUSTERS)}")
    if cluster != "slurm":
        return
    reason = slurm_unreachable_reason()
    if reason:
        raise AlgobenchError(f"{reason}; {LOCAL_HINT}")
    if partition is not None:
        known = partitions()
        if partition not in known:
            raise AlgobenchError(f"unknown SLURM partition {partition!r}; this cluster has: {', '.join(known)}")
