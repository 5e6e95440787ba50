#!/usr/bin/env python3
"""FAKE IBM Spectrum LSF commands for tests -- NOT LSF.

``bsub``, ``bjobs``, ``bkill``, ``bmod``, ``bparams`` and ``lsadmin`` in this folder are
two-line wrappers that run this file. Each call appends ``{"cmd", "argv",
"stdin", "cwd"}`` to ``$FAKE_LSF_DIR/calls.jsonl`` and replies the way LSF 10.1
does (the reply formats s2kit parses):

  bsub < script     ``Job <N> is submitted to queue <normal>.`` (job ids count up
                    from 100); the script's ``#BSUB -J "name[1-N]%K"`` makes N
                    elements, stored in ``$FAKE_LSF_DIR/jobs.json`` as PEND.
                    FAKE_LSF_RUN=1: bsub runs every element right away with
                    ``bash`` (LSB_JOBID, LSB_JOBINDEX, LSB_DJOB_NUMPROC set, output
                    to the ``#BSUB -o`` file with %J/%I replaced) and stores
                    DONE/EXIT with the exit code.
                    FAKE_LSF_BSUB_REPLY: reply this text instead (exit 0).
  bjobs -a -o "jobid jobindex stat exit_code" -json ID...
                    ``{"COMMAND": "bjobs", "JOBS": n, "RECORDS": [...]}``, one record
                    per element; an unknown id gives ``{"JOBID": id, "ERROR":
                    "Job <id> is not found"}`` and exit status 255.
  bkill ID          pending/running elements -> EXIT (exit code 130).
  bmod -W H:MM ID   ``Parameters of job <ID> are being changed``; the run limit is stored
                    in jobs.json (``runlimit``). FAKE_LSF_BMOD_REFUSE=TEXT: reply TEXT on
                    stderr and exit 255 (a site where only an administrator may change it).
  bparams -a        a parameter listing with ``MAX_JOB_ARRAY_SIZE = $FAKE_LSF_MAX_ARRAY``
                    (default 1000) and ``RESOURCE_RESERVE_PER_TASK = $FAKE_LSF_PER_TASK`` (N).
  lsadmin showconf lim
                    a LIM configuration listing with ``LSF_UNIT_FOR_LIMITS =
                    $FAKE_LSF_UNIT`` (default MB); FAKE_LSF_UNIT=none leaves the line
                    out, FAKE_LSF_UNIT=fail makes lsadmin fail like a LIM that is down.

FAKE_LSF_DOWN=1 makes bsub/bjobs/bkill/bmod/bparams fail like an unreachable mbatchd.
Stdlib only.
"""

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

STATE = Path(os.environ.get("FAKE_LSF_DIR", "/tmp/fake-lsf"))
DOWN_MSG = "LSF is down. Please wait ...\nbatch system daemon not responding ... still trying\n"


@contextmanager
def locked():
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def load_jobs():
    try:
        return json.loads((STATE / "jobs.json").read_text())
    except FileNotFoundError:
        return {"next": 100, "jobs": {}}


def save_jobs(doc):
    tmp = STATE / "jobs.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, STATE / "jobs.json")


def log_call(cmd, argv, stdin):
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as fh:
        fh.write(json.dumps({"cmd": cmd, "argv": argv, "stdin": stdin, "cwd": os.getcwd()}) + "\n")


def down():
    if os.environ.get("FAKE_LSF_DOWN") == "1":
        sys.stderr.write(DOWN_MSG)
        return True
    return False


def bsub_options(script):
    """#BSUB lines -> {option: value} (shell-like quoting, as bsub parses them)."""
    opts = {}
    for line in script.splitlines():
        if not line.startswith("#BSUB"):
            continue
        words = shlex.split(line[len("#BSUB") :])
        if len(words) >= 2:
            opts[words[0]] = words[1]
    return opts


def bsub(argv, stdin):
    if down():
        return 255
    reply = os.environ.get("FAKE_LSF_BSUB_REPLY")
    if reply is not None:
        print(reply)
        return 0
    opts = bsub_options(stdin)
    m = re.fullmatch(r"([^\[]+)\[(\d+)-(\d+)\](?:%(\d+))?", opts.get("-J", ""))
    if not m:
        sys.stderr.write("fake bsub: expected -J name[1-N]%K in the #BSUB lines\n")
        return 255
    first, last = int(m.group(2)), int(m.group(3))
    queue = opts.get("-q", "normal")
    with locked():
        doc = load_jobs()
        jid = str(doc["next"])
        doc["next"] += 1
        doc["jobs"][jid] = {
            "name": m.group(1),
            "queue": queue,
            "elements": {str(i): {"stat": "PEND", "exit_code": ""} for i in range(first, last + 1)},
        }
        save_jobs(doc)
    (STATE / f"job-{jid}.sh").write_text(stdin)
    print(f"Job <{jid}> is submitted to queue <{queue}>.")
    sys.stdout.flush()
    if os.environ.get("FAKE_LSF_RUN") == "1":
        for i in range(first, last + 1):
            env = dict(os.environ, LSB_JOBID=jid, LSB_JOBINDEX=str(i), LSB_DJOB_NUMPROC=opts.get("-n", "1"))
            out = opts.get("-o", f"{jid}_{i}.log").replace("%J", jid).replace("%I", str(i))
            set_stat(jid, i, "RUN", "")
            with open(out, "ab") as fh:
                rc = subprocess.call(["bash", str(STATE / f"job-{jid}.sh")], env=env, stdout=fh, stderr=fh)
            set_stat(jid, i, "DONE" if rc == 0 else "EXIT", "" if rc == 0 else str(rc))
    return 0


def set_stat(jid, i, stat, code):
    with locked():
        doc = load_jobs()
        doc["jobs"][jid]["elements"][str(i)] = {"stat": stat, "exit_code": code}
        save_jobs(doc)


def bjobs(argv):
    if down():
        return 255
    ids = [a for a in argv if re.fullmatch(r"\d+", a)]
    doc = load_jobs()
    records, missing = [], False
    for jid in ids:
        job = doc["jobs"].get(jid)
        if job is None:
            records.append({"JOBID": jid, "ERROR": f"Job <{jid}> is not found"})
            missing = True
            continue
        for idx, el in job["elements"].items():
            records.append({"JOBID": jid, "JOBINDEX": idx, "STAT": el["stat"], "EXIT_CODE": el["exit_code"]})
    print(json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}, indent=2))
    return 255 if missing else 0


def bkill(argv):
    if down():
        return 255
    jid = argv[-1]
    with locked():
        doc = load_jobs()
        job = doc["jobs"].get(jid)
        if job is None:
            sys.stderr.write(f"Job <{jid}>: No matching job found\n")
            return 255
        for el in job["elements"].values():
            if el["stat"] in ("PEND", "RUN"):
                el.update(stat="EXIT", exit_code="130")
        save_jobs(doc)
    print(f"Job <{jid}> is being terminated")
    return 0


def bmod(argv):
    if down():
        return 255
    refuse = os.environ.get("FAKE_LSF_BMOD_REFUSE")
    if refuse:
        sys.stderr.write(refuse + "\n")
        return 255
    if len(argv) != 3 or argv[0] != "-W" or not re.fullmatch(r"\d+:\d\d", argv[1]):
        sys.stderr.write("fake bmod: only 'bmod -W H:MM JOBID' is faked\n")
        return 255
    jid = argv[2]
    with locked():
        doc = load_jobs()
        job = doc["jobs"].get(jid)
        if job is None:
            sys.stderr.write(f"Job <{jid}>: No matching job found\n")
            return 255
        job["runlimit"] = argv[1]
        save_jobs(doc)
    print(f"Parameters of job <{jid}> are being changed")
    return 0


def bparams(argv):
    if down():
        return 255
    size = os.environ.get("FAKE_LSF_MAX_ARRAY", "1000")
    per = os.environ.get("FAKE_LSF_PER_TASK", "N")
    print("System default queues for automatic queue selection:")
    print("    normal")
    print("Amount of time in seconds used for calculating parameter values:")
    print("    60")
    print("Configuration parameters:")
    for key, value in (
        ("MBD_SLEEP_TIME", "10"),
        ("SBD_SLEEP_TIME", "7"),
        ("JOB_ACCEPT_INTERVAL", "0"),
        ("MAX_JOB_ARRAY_SIZE", size),
        ("RESOURCE_RESERVE_PER_TASK", per),
        ("CLEAN_PERIOD", "3600"),
    ):
        print(f"    {key} = {value}")
    return 0


def lsadmin(argv):
    unit = os.environ.get("FAKE_LSF_UNIT", "MB")
    if argv[:2] != ["showconf", "lim"]:
        sys.stderr.write("fake lsadmin: only 'showconf lim' is faked\n")
        return 255
    if unit == "fail":
        sys.stderr.write("ls_getclustername(): LIM is down; try later\n")
        return 255
    print("SERVER CONFIGURATION OF LIM AT Tue Nov 25 15:00:00 2026")
    print("    LSF_CONFDIR = /opt/lsf/conf")
    print("    LSF_LIM_PORT = 7869")
    if unit != "none":
        print(f"    LSF_UNIT_FOR_LIMITS = {unit}")
    print("    LSF_ENABLE_EGO = N")
    return 0


def main():
    cmd = sys.argv[1]
    argv = sys.argv[2:]
    stdin = sys.stdin.read() if cmd == "bsub" and not sys.stdin.isatty() else None
    log_call(cmd, argv, stdin)
    handler = {
        "bsub": lambda: bsub(argv, stdin or ""),
        "bjobs": lambda: bjobs(argv),
        "bkill": lambda: bkill(argv),
        "bmod": lambda: bmod(argv),
        "bparams": lambda: bparams(argv),
        "lsadmin": lambda: lsadmin(argv),
    }[cmd]
    return handler()


if __name__ == "__main__":
    sys.exit(main())
