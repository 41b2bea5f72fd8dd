#!/usr/bin/env bash
# Structured against unstructured IMP at equal parameter count (docs/sweeps/
# structured-vs-unstructured.toml): runs the sweep with the local pool, collects accuracy by
# weights remaining, then exports every round of seed 0 (CSR for unstructured tickets, the
# compacted network for structured ones, the dense masked network for both) and times
# `lth infer` on the 10,000 test images at batch 1 and 60 (dense and compact formats on
# $LTH_INFER_BACKEND, default flex; CSR on the host). Writes OUT/inference.md.
#   scripts/structured-vs-unstructured.sh [OUT]     (default runs/structured)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
out=${1:-runs/structured}
lth=${LTH:-$CARGO_TARGET_DIR/release/lth}
sweep=docs/sweeps/structured-vs-unstructured.toml
start=$(date +%s)
"$lth" sweep run "$sweep" --out "$out"
"$lth" sweep collect "$sweep" --out "$out"
echo "structured-vs-unstructured: sweep done in $(( $(date +%s) - start ))s"
python3 - "$lth" "$out" "${LTH_INFER_BACKEND:-flex}" <<'PY'
import json, subprocess, sys, pathlib
lth, out, backend = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
plan = json.loads((out / "plan.json").read_text())
rows = []
for entry in plan["entries"]:
    args = entry["arguments"]
    if "--seed" in args and args[args.index("--seed") + 1] != "0":
        continue
    granularity = args[args.index("--granularity") + 1] if "--granularity" in args else "weights"
    model = args[args.index("--model") + 1]
    run = out / "runs" / entry["name"]
    records = next((run / "records").glob("imp-*"))
    for round_dir in sorted(records.glob("round-*")):
        trained = round_dir / "trained.safetensors"
        if not trained.exists():
            continue
        result = json.loads((round_dir / "result.json").read_text())
        stem = out / "export" / f"{model}-{granularity}-{round_dir.name}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        formats = "dense,csr" if granularity == "weights" else "dense,compact"
        subprocess.run([lth, "export", str(trained), "--out", str(stem), "--format", formats], check=True, capture_output=True)
        row = {"model": model, "granularity": granularity, "round": result["round"],
               "remaining": result["weights_remaining"], "test_accuracy": result["test_accuracy"]}
        for fmt in formats.split(","):
            for batch in (1, 60):
                report = json.loads(subprocess.run(
                    [lth, "infer", f"{stem}.{fmt}.safetensors", "--json", "--batch", str(batch), "--backend", backend],
                    check=True, capture_output=True, text=True).stdout)
                row[f"{fmt}_{batch}"] = report["images_per_second"]
                row[f"{fmt}_accuracy"] = report["accuracy"]
        rows.append(row)
lines = ["| model | pruning | round | % weights | test acc % (early stop) | dense img/s b1 / b60 | sparse img/s b1 / b60 | × dense b1 / b60 |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    fast = "csr" if r["granularity"] == "weights" else "compact"
    name = "unstructured → CSR" if fast == "csr" else "structured → compact"
    lines.append(f"| {r['model']} | {name} | {r['round']} | {100*r['remaining']:.1f} | {100*r['test_accuracy']:.2f} | "
                 f"{r['dense_1']:.0f} / {r['dense_60']:.0f} | {r[fast + '_1']:.0f} / {r[fast + '_60']:.0f} | "
                 f"{r[fast + '_1']/r['dense_1']:.2f} / {r[fast + '_60']/r['dense_60']:.2f} |")
(out / "inference.md").write_text("\n".join(lines) + "\n")
(out / "inference.json").write_text(json.dumps(rows, indent=1))
print("\n".join(lines))
PY
echo "structured-vs-unstructured: done in $(( $(date +%s) - start ))s"
