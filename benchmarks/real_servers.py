"""Budgets of ``connections --real``: --quick within 60 s, the default within 4 minutes, each
server started within 5 s, and our client against pgbench (within 30 %, or a reason).

Runs the installed entry point as a user would and reads its JSON report: the wall time of
each run, each server's start-up (``data.servers``) and ``conn.pgbench.<N>.tps`` with our
client's ratio. Exit status 0 when every budget was met. Not a test: timings belong here.
``--quick-only`` skips the default run (four minutes).

    $ .venv/bin/python benchmarks/real_servers.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

ENTRY = Path(sys.executable).with_name("ostoolkit")
RUNS = ((["--quick"], 60.0), ([], 240.0))
START_BUDGET_S = 5.0
CLIENT_BAND = 0.30  # our client's tx/s within 30 % of pgbench's


def run(args: list[str]) -> tuple[float, dict[str, Any]]:
    """One run of ``connections --real``: its wall time and its report."""
    start = time.monotonic()
    done = subprocess.run(
        [ENTRY, "connections", "--real", *args, "--json", "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return time.monotonic() - start, json.loads(done.stdout)


def main() -> int:
    """Time each run against its budget; check start-ups and the pgbench ratio."""
    rows, ok = [], True
    for args, budget in RUNS[:1] if "--quick-only" in sys.argv else RUNS:
        wall, report = run(args)
        name = "ostoolkit connections --real " + " ".join(args)
        rows.append([name, f"{budget:g} s", f"{wall:.1f} s", "ok" if wall <= budget else "over"])
        ok = ok and wall <= budget
        for server, facts in report["data"].get("servers", {}).items():
            took = facts["started_in_s"]
            within = took <= START_BUDGET_S
            ok = ok and within
            rows.append(
                [
                    f"  {server} start-up",
                    f"{START_BUDGET_S:g} s",
                    f"{took:.2f} s",
                    "ok" if within else "over",
                ]
            )
        for result in report["results"]:
            if result["id"].startswith("conn.pgbench."):
                ratio = result["extra"].get("ours_over_pgbench")
                within = ratio is not None and abs(ratio - 1) <= CLIENT_BAND
                what = f"  ours/pgbench at {result['extra']['clients']} clients"
                rows.append([what, f"1±{CLIENT_BAND:g}", f"{ratio}", "ok" if within else "off"])
        reference = [r for r in report["results"] if "reference_us" in r.get("extra", {})]
        if reference:
            print(f"host speed reference: {reference[0]['extra']['reference_us']:.2f} µs")
    print(tabulate(rows, headers=["what", "budget", "measured", "verdict"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
