"""`kgp` run inside the test process: the console entry point itself (``kgplatform.cli.main.main``: the typer app,
the mapping of errors onto one ``Error:`` line and an exit code), with the environment a `kgp` subprocess gets
and its stdout/stderr captured. It returns what :func:`subprocess.run` would, so a test can use either.

For tests that are about what a command does, not about the process: it saves the interpreter start and the
imports (torch, PyG, sentence-transformers: several seconds a call on a loaded machine). Tests about the process
itself (crash tests, the database-down message, the console script's own error lines) keep a real subprocess.
An exception that escapes ``main()`` becomes what the interpreter would print: a traceback on stderr and exit 1,
so ``"Traceback" not in r.stderr`` still fails for an unmapped error.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from unittest import mock


def kgp_in_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run ``kgp ARGS`` in this process with exactly ``env`` as the environment (restored afterwards, as is
    torch's thread count)."""
    from kgplatform.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    import torch  # the suite imports it anyway; here so that its thread count can be put back

    threads = torch.get_num_threads()
    with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(sys, "argv", ["kgp", *args]), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
        except Exception:  # noqa: BLE001 - what an uncaught exception does to a real process
            traceback.print_exc()
            code = 1
        finally:  # a command may lower torch's threads for its own subprocesses: not for the tests after it
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["kgp", *args], code, out.getvalue(), err.getvalue())
