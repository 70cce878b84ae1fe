"""Runs each notebook given on the command line with nbclient, in place of a
person pressing "run all": a cell that raises fails the script. Outputs are
not written back, so the committed notebooks stay free of them."""

import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

failed = []
for path in map(pathlib.Path, sys.argv[1:]):
    nb = nbformat.read(path, as_version=4)
    started = time.monotonic()
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        print(f"ok     {path} ({time.monotonic() - started:.0f} s)")
    except CellExecutionError as e:
        failed.append(path)
        print(f"FAILED {path}\n{e}", file=sys.stderr)
sys.exit(1 if failed else 0)
