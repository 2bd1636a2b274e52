"""jaxmix benchmarks against its peers, measured in one process.

    python3 dev.py bench                 # all workloads, full size (under 20 minutes on 2 cores)
    python3 dev.py bench --quick         # smaller data (under 3 minutes)
    python3 dev.py bench --only W1 W4    # some workloads (W7, W8: scaling, bench/scale.py)
    python3 dev.py bench --only T1 T2    # time to first result in fresh processes (bench/cold.py)

Every workload runs jaxmix and each installed peer (scikit-learn, FAISS,
gmmx; a missing one is reported as skipped) on the same data, from the same
initial centres or parameters, for the same number of iterations (tol = 0
where the peer allows it). After one warm-up each, the libraries are timed
in `--repeats` interleaved rounds (the machine's speed drifts; interleaving
keeps the drift out of the ratios). Each row gives the median and min/max
wall time, jaxmix's compile time (warm-up
minus median), the peak resident memory added by the call, the final
objective (a row is flagged when it differs from jaxmix's beyond the
stated tolerance), and jaxmix / peer (below 1: jaxmix is faster). k-means
rows also give their fraction of the float32 GEMM roofline measured in the
same run. Results go to bench/results/<date>-<device>[-quick].{json,md,png};
a full run of all workloads also rewrites the tables of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cold  # noqa: E402
import jax  # noqa: E402
import scale  # noqa: E402
from harness import chart, device_name, flag_objectives, run_interleaved, table, update_page, versions  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

# Workloads whose peers take 15-25 s a fit: fewer rounds keep the full run under 20 minutes.
SLOW = {"W2g", "W4", "W6"}
SLOW_ROUNDS = 5


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller data, under 3 minutes")
    p.add_argument(
        "--repeats",
        type=int,
        default=11,
        help="interleaved timed rounds after one warm-up (default 11; at most 5 for the slow W4 and W6)",
    )
    p.add_argument("--only", nargs="*", default=None, help="workload ids, e.g. W1 W4")
    p.add_argument("--no-save", action="store_true", help="write nothing to bench/results/ or docs/performance.md")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    unknown = set(args.only or ()) - set(WORKLOADS) - scale.WORKLOADS - set(cold.TASKS)
    if unknown:
        p.error(f"unknown workloads {sorted(unknown)}; choose from {[*WORKLOADS, *sorted(scale.WORKLOADS)]}")

    device = device_name()
    today = dt.date.today().isoformat()
    meta = {"date": today, "device": device, "backend": jax.default_backend(), "cores": os.cpu_count(), **versions()}
    print(f"# jaxmix bench {meta}", flush=True)
    rows = []
    for wid, fn in WORKLOADS.items():
        if args.only and wid not in args.only:
            continue
        print(f"running {fn.__doc__}", file=sys.stderr, flush=True)
        rounds = min(args.repeats, SLOW_ROUNDS) if wid in SLOW else args.repeats
        rows += run_interleaved(fn(args.quick, rounds), rounds)
    flag_objectives(rows)
    md = table(rows) if rows else ""
    wanted_scale = sorted(scale.WORKLOADS & set(args.only)) if args.only else sorted(scale.WORKLOADS)
    if wanted_scale:
        # Separate processes: a device count and a peak memory of their own.
        scale_md = scale.run(args.quick, wanted_scale, min(args.repeats, SLOW_ROUNDS))
        md = f"{md}\n\nScaling (each in its own process, bench/scale.py):\n\n{scale_md}" if md else scale_md
    wanted_cold = [t for t in cold.TASKS if not args.only or t in args.only]
    if wanted_cold:
        # Whole processes: cold (empty program cache) and a second run, against the peers.
        cold_md, _ = cold.run(wanted_cold, rounds=1 if args.quick else 3)
        md = f"{md}\n\nTime to first result (fresh processes, bench/cold.py):\n\n{cold_md}" if md else cold_md
    print(md)
    if args.no_save:
        return 0
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stem = f"{today}-{device}{'-quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps({**meta, "quick": args.quick, "rows": rows}, indent=1))
    header = (
        f"Measured {today} on `{device}` ({meta['backend']}), jax {meta['jax']}, jaxmix {meta['jaxmix']}, "
        f"scikit-learn {meta['scikit-learn']}, faiss-cpu {meta['faiss-cpu']}, gmmx {meta['gmmx']}"
        f"{' (--quick sizes)' if args.quick else ''}. Ratios are jaxmix time / peer time (below 1: jaxmix is faster)."
    )
    (out / f"{stem}.md").write_text(f"{header}\n\n{md}\n")
    has_chart = bool(rows) and chart(rows, out / f"{stem}.png", f"jaxmix / peer, {today}, {device}")
    print(f"wrote {out / stem}.json, .md{', .png' if has_chart else ''}", file=sys.stderr)
    if not args.quick and not args.only:
        page = HERE.parent / "docs" / "performance.md"
        if update_page(page, header, md, out / f"{stem}.png" if has_chart else None):
            print(f"updated the tables of {page.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
