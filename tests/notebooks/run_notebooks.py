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

ROOT = pathlib.Path(__file__).resolve().parents[2]
# In CI, evcxr 0.22 kernels started after a first one had run died before answering
# kernel_info (2026-11-23, with a shared and with fresh compile caches; not seen locally
# after the fix). So all notebooks run in ONE kernel, one after another, with evcxr's `:clear`
# between them: it drops every variable, item and `:dep`, so each notebook starts from the
# state of a fresh kernel (a cell that leans on an earlier notebook fails), and lab-core is
# compiled once. A kernel that dies while starting is started once more after this pause.
RESTART_PAUSE = 30
CLEAR = ":clear"


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


def combined(notebooks):
    """One notebook holding every notebook's cells in order, a `:clear` cell before each but
    the first, and the index range of each notebook's cells in it."""
    merged = nbformat.v4.new_notebook(metadata=notebooks[0].metadata)
    ranges = []
    for notebook in notebooks:
        if merged.cells:
            merged.cells.append(nbformat.v4.new_code_cell(CLEAR))
        first = len(merged.cells)
        merged.cells.extend(notebook.cells)
        ranges.append((first, len(merged.cells)))
    return merged, ranges


def tail_of_log(path, lines=40):
    """The kernel's stderr without cargo's `Compiling` lines: where its errors are."""
    try:
        text = pathlib.Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in text if "Compiling " not in line][-lines:]


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
    runnable = []
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
        runnable.append((path, notebook, expected))
    if not runnable:
        sys.exit(f"notebooks failed: {', '.join(failures)}")

    # A fresh evcxr compile cache (`:cache`, in $XDG_CACHE_HOME/evcxr) for the run.
    caches = os.environ.get("LTH_NOTEBOOK_CACHES")
    if caches:
        shutil.rmtree(caches, ignore_errors=True)
        pathlib.Path(caches).mkdir(parents=True)
        os.environ["XDG_CACHE_HOME"] = caches
    kernel_log = out / "kernel-stderr.log"
    for attempt in (1, 2):
        merged, ranges = combined([notebook for _, notebook, _ in runnable])
        # allow_errors: an error cell is recorded and reported, and the next notebooks still run.
        client = NotebookClient(merged, timeout=args.timeout, kernel_name="rust", allow_errors=True,
                                resources={"metadata": {"path": str(runnable[0][0].parent)}})
        started = time.time()
        cell_times = {}

        def on_cell_executed(cell, cell_index, execute_reply, **_):
            cell_times[cell_index] = round(time.time() - on_cell_executed.last, 1)
            on_cell_executed.last = time.time()
        on_cell_executed.last = started
        client.on_cell_executed = on_cell_executed
        error = None
        with open(kernel_log, "w") as log:
            try:
                client.execute(stderr=log)
            except Exception as e:  # kernel death, timeouts
                error = f"{type(e).__name__}: {e}"
        if attempt == 1 and not cell_times and error and "before replying to kernel_info" in error:
            print(f"the kernel died while starting ({error}); its stderr:", flush=True)
            print("\n".join(tail_of_log(kernel_log)), flush=True)
            print(f"starting it again in {RESTART_PAUSE} s", flush=True)
            time.sleep(RESTART_PAUSE)
            continue
        break
    print(f"all notebooks in one kernel: {time.time() - started:.0f}s", flush=True)

    timings = {}
    for (path, _, expected), (first, end) in zip(runnable, ranges):
        notebook = nbformat.read(path, as_version=4)
        notebook.cells = merged.cells[first:end]
        notebook.metadata = merged.metadata
        nbformat.write(notebook, out / path.name)
        times = [(i - first, cell_times[i]) for i in range(first, end) if i in cell_times]
        seconds = sum(t for _, t in times)
        problems = error_outputs(notebook) + missing_outputs(notebook, expected)
        if len(times) < sum(1 for c in notebook.cells if c.cell_type == "code"):
            problems.insert(0, f"not every cell ran: {error or 'the run stopped'}")
        charts = svg_outputs(notebook)
        timings[path.name] = {"seconds": round(seconds, 1), "cells": times, "svg_charts": charts}
        verdict = "ok" if not problems else "FAILED"
        print(f"{path.name}: {verdict} in {seconds:.0f}s, {charts} SVG charts, cell times {times}", flush=True)
        for problem in problems:
            print(f"  {problem}", flush=True)
        if problems:
            failures.append(path.name)
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    if error or failures:
        print("the kernel's stderr (without `Compiling` lines):", flush=True)
        print("\n".join(tail_of_log(kernel_log)), flush=True)
    if failures:
        sys.exit(f"notebooks failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
