#!/usr/bin/env python3
"""Run a shape under the deliberately broken allocator (broken.c) and pass
only if the shape noticed: exit status 1 with a "<name>: FAILED: ..." line
from its own checks.  A clean exit fails this test (the shape did not look
at its data).  A crash fails it too, unless --or-crash is given: for a shape
whose data structures link blocks by pointers (espresso's covers), a block
handed out twice can crash the program before any check runs, which is
still a failure of the allocator, not a silent success.

    expect-failure.py [--or-crash] LIBBROKEN.so SHAPE [ARGS...]
"""
import os
import subprocess
import sys

args = sys.argv[1:]
or_crash = args[:1] == ["--or-crash"]
if or_crash:
    args = args[1:]
lib, cmd = args[0], args[1:]
env = dict(os.environ, LD_PRELOAD=lib)
r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
caught = r.returncode == 1 and ": FAILED: " in r.stderr
crashed = r.returncode < 0
print("exit status %d; stderr: %s" % (r.returncode, r.stderr.strip()[-500:]))
if caught or (or_crash and crashed):
    sys.exit(0)
print("expected the shape to detect the broken allocator (exit 1, FAILED%s)" %
      (", or a crash" if or_crash else ""))
sys.exit(1)
