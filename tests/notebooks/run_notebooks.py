#!/usr/bin/env python3
"""Executes every notebook in notebooks/ with the evcxr kernel (nbclient), top to bottom.

Fails on any error output, and unless each notebook shows at least the number of inline SVG
charts its metadata (`lth.expected_svg_outputs`) promises. Executed copies and per-cell
timings go to the output directory (default: target-independent $LTH_NOTEBOOK_OUT or
notebooks/executed/, which git ignores); the committed notebooks stay without outputs.

    tests/notebooks/run_notebooks.py [--out DIR] [NOTEBOOK ...]
"""
import argparse
import json
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parents[2]


def svg_outputs(notebook):
    return sum(1 for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])
               if "image/svg+xml" in output.get("data", {}))


def error_outputs(notebook):
    errors = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            # evcxr reports compile errors on stderr without an error output in some versions.
            if output.get("name") == "stderr" and "error[E" in output.get("text", ""):
                errors.append(f"cell {index}: {output['text'][:2000]}")
    return errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.environ.get("LTH_NOTEBOOK_OUT", str(ROOT / "notebooks" / "executed")))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell (the first compiles lab-core)")
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [pathlib.Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    failures = []
    timings = {}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        stored = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.get("outputs")]
        if stored:
            failures.append(path.name)
            print(f"{path.name}: committed with outputs in cells {stored}; clear them", flush=True)
            continue
        expected = notebook.metadata.get("lth", {}).get("expected_svg_outputs", 1)
        client = NotebookClient(notebook, timeout=args.timeout, kernel_name="rust",
                                resources={"metadata": {"path": str(path.parent)}})
        started = time.time()
        cell_times = []

        def on_cell_executed(cell, cell_index, execute_reply, **_):
            cell_times.append((cell_index, round(time.time() - on_cell_executed.last, 1)))
            on_cell_executed.last = time.time()
        on_cell_executed.last = started
        client.on_cell_executed = on_cell_executed
        error = None
        try:
            client.execute()
        except CellExecutionError as e:
            error = str(e).splitlines()[-1] if str(e) else repr(e)
        except Exception as e:  # kernel death, timeouts
            error = f"{type(e).__name__}: {e}"
        seconds = time.time() - started
        nbformat.write(notebook, out / path.name)
        problems = ([error] if error else []) + error_outputs(notebook)
        charts = svg_outputs(notebook)
        if charts < expected:
            problems.append(f"{charts} inline SVG charts, expected {expected}")
        timings[path.name] = {"seconds": round(seconds, 1), "cells": cell_times, "svg_charts": charts}
        verdict = "ok" if not problems else "FAILED"
        print(f"{path.name}: {verdict} in {seconds:.0f}s, {charts} SVG charts, cell times {cell_times}", flush=True)
        for problem in problems:
            print(f"  {problem}", flush=True)
        if problems:
            failures.append(path.name)
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    if failures:
        sys.exit(f"notebooks failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
