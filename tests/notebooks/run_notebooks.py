#!/usr/bin/env python3
"""Executes every notebook in notebooks/ with the evcxr kernel (nbclient), top to bottom.

Fails on any error output, and unless every cell whose metadata promises a rich output
(`lth.expected_output`: image/svg+xml for a chart, text/html for a table) shows one; every
notebook must promise at least one chart. Executed copies and per-cell
timings go to the output directory (default: target-independent $LTH_NOTEBOOK_OUT or
notebooks/executed/, which git ignores); the committed notebooks stay without outputs.

    tests/notebooks/run_notebooks.py [--out DIR] [NOTEBOOK ...]
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parents[2]
# evcxr 0.22's start-up cargo probe (`rustc - --print=…`) fails right after another kernel
# has run here, and works again a little later: a kernel that dies while starting is started
# once more after this pause.
RESTART_PAUSE = 30


def svg_outputs(notebook):
    return sum(1 for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])
               if "image/svg+xml" in output.get("data", {}))


def expected_outputs(notebook):
    """(cell index, cell id, MIME type) for each cell whose metadata `lth.expected_output`
    promises a rich output: a chart (image/svg+xml) or a table (text/html)."""
    return [(i, cell.get("id"), cell.metadata["lth"]["expected_output"])
            for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and "expected_output" in cell.metadata.get("lth", {})]


def missing_outputs(notebook, expected):
    missing = []
    for index, cell_id, mime in expected:
        shown = [m for output in notebook.cells[index].get("outputs", []) for m in output.get("data", {})]
        if mime not in shown:
            missing.append(f"cell {index} ({cell_id}): no {mime} output (got {shown or 'none'})")
    return missing


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
        expected = expected_outputs(notebook)
        if not any(mime == "image/svg+xml" for _, _, mime in expected):
            failures.append(path.name)
            print(f"{path.name}: no cell promises a chart (metadata lth.expected_output)", flush=True)
            continue
        # A kernel that dies before it answers kernel_info never ran a cell (see RESTART_PAUSE).
        # Such a start is retried once, and said; a failure in any cell is never retried.
        # evcxr 0.22's compile cache (`:cache`, in $XDG_CACHE_HOME/evcxr), shared by kernels
        # here, broke every kernel start after the first two (its cargo probe of rustc failed;
        # measured 2026-11-23); the first kernel on a fresh cache always started. So each
        # notebook gets a fresh one: each first cell compiles lab-core's dependencies (≈ 5 min).
        caches = os.environ.get("LTH_NOTEBOOK_CACHES")
        if caches:
            cache = pathlib.Path(caches) / path.stem
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir(parents=True)
            os.environ["XDG_CACHE_HOME"] = str(cache)
        for attempt in (1, 2):
            notebook = nbformat.read(path, as_version=4)
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
            if attempt == 1 and not cell_times and error and "before replying to kernel_info" in error:
                print(f"{path.name}: the kernel died while starting ({error}); starting it again "
                      f"in {RESTART_PAUSE} s", flush=True)
                time.sleep(RESTART_PAUSE)
                continue
            break
        seconds = time.time() - started
        nbformat.write(notebook, out / path.name)
        problems = ([error] if error else []) + error_outputs(notebook)
        charts = svg_outputs(notebook)
        problems += missing_outputs(notebook, expected)
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
