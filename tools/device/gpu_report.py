#!/usr/bin/env python3
"""Combines the logs of tools/device/gpu_bench.sh into one JSON and a Markdown table.

    python3 tools/device/gpu_report.py LOGS OUT.json OUT.md

Exits 1 (after writing both files) when a test binary failed, a self-test did not pass, a
variant has no timing, or an evaluation failed or exceeded its bounds (compare_eval.py's exit
status), so a dry run that CI runs fails loudly.
"""
import glob
import json
import os
import re
import sys


def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f]
    except OSError:
        return []


def main():
    logs, out_json, out_md = sys.argv[1:4]
    problems = []
    machine = lines(os.path.join(logs, "machine.txt"))
    tests = lines(os.path.join(logs, "tests.txt"))
    if not tests:
        problems.append("no test binary ran")
    for t in tests:
        if not re.search(r": rc 0 \(test result: ok\.", t):
            problems.append("test failed: " + t)
    skipped = lines(os.path.join(logs, "skipped.txt"))
    selftests = lines(os.path.join(logs, "selftest.txt"))
    for s in selftests:
        if not s.endswith("PASS"):
            problems.append("self-test: " + s)
    evals = lines(os.path.join(logs, "evals.txt"))
    for e in evals:
        if not re.search(r": rc 0(, compare rc 0)?$", e):
            problems.append("evaluation: " + e)
    compares = {}
    for p in sorted(glob.glob(os.path.join(logs, "compare_*.md"))):
        compares[os.path.basename(p)[len("compare_"):-len(".md")]] = lines(p)
    bench = [json.loads(l) for l in lines(os.path.join(logs, "bench.jsonl")) if l.strip()]
    variants = []
    for b in bench:
        if b["variant"] not in variants:
            variants.append(b["variant"])
    for b in bench:
        if "gpu_ms" not in b:
            problems.append(f"variant {b['variant']} batch {b['batch']}: no gpu_ms")
    profiles = {}
    for p in sorted(glob.glob(os.path.join(logs, "profile_*.json"))):
        name = os.path.basename(p)[len("profile_"):-len(".json")]
        got = [json.loads(l) for l in lines(p) if l.strip()]
        if got:
            profiles[name] = {k: got[0][k] for k in ("batch", "dispatches", "gpu_ms", "wall_ms")}
    for v in variants:
        if v not in profiles:
            problems.append(f"variant {v}: no profile")
    try:
        with open(os.path.join(logs, "torch_peer.json")) as f:
            peer = json.load(f)
    except (OSError, ValueError):
        peer = {}
        problems.append("no torch_peer.json")
    if len(variants) < 6:
        problems.append(f"only {len(variants)} variants timed: {variants}")
    result = {"machine": machine, "tests": tests, "skipped": skipped, "selftests": selftests,
              "bench": bench, "evals": evals, "eval_compare": compares,
              "profiles_batch1": profiles, "torch_peer": peer, "problems": problems}
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)

    batches = sorted({b["batch"] for b in bench})
    md = ["Machine: " + " / ".join(machine), "",
          "images/s (p50 wall ms per batch; GPU ms per batch from start/end timestamps) of the "
          "ResNet-18 CIFAR-10 HEAT pipeline, host f32 batch in, scores out:", ""]
    head = ["batch"] + variants
    peer_res = peer.get("results", {})
    if peer_res:
        head += ["PyTorch eager fp16", "PyTorch CUDA graph"]
    md.append("| " + " | ".join(head) + " |")
    md.append("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
    for n in batches:
        row = [str(n)]
        for v in variants:
            b = next((b for b in bench if b["variant"] == v and b["batch"] == n), None)
            if b is None:
                row.append("—")
            elif "gpu_ms" in b:
                row.append(f"{b['images_per_s']:.0f} ({b['p50_ms']:.3f}; GPU {b['gpu_ms']:.3f})")
            else:
                row.append(f"{b['images_per_s']:.0f} ({b['p50_ms']:.3f})")
        r = peer_res.get(str(n)) or peer_res.get(n)
        if peer_res:
            for k in ("eager_fp16_channels_last", "cuda_graph_fp16"):
                row.append(f"{r[k]['images_per_s']:.0f} ({r[k]['p50_ms']:.3f})" if r else "—")
        md.append("| " + " | ".join(row) + " |")
    md += ["", "Dispatches and GPU time at batch 1 (`hood bench --profile --json`):", "",
           "| variant | dispatches | GPU ms | wall ms |", "| --- | ---: | ---: | ---: |"]
    for v, p in profiles.items():
        md.append(f"| {v} | {p['dispatches']} | {p['gpu_ms']:.3f} | {p['wall_ms']:.3f} |")
    md += ["", "Tests: " + "; ".join(tests), "", "Self-tests:", ""] + ["    " + s for s in selftests]
    if evals:
        md += ["", "Evaluation of the demo model, PyTorch vs `hood eval --backend vulkan` "
               "(tools/train/compare_eval.py):", ""] + ["    " + e for e in evals]
        for core, text in compares.items():
            md += ["", f"GEMM core `{core}`:", ""] + text
    if skipped:
        md += ["", "Not run:", ""] + ["- " + s for s in skipped]
    if problems:
        md += ["", "**Problems:**", ""] + ["- " + p for p in problems]
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
