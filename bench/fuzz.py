"""The long fuzz run: schemathesis against a fresh server's /openapi.json, many examples per operation.

Same server and checks as tests/test_fuzz.py (no 5xx; status, content type and body as documented),
with more examples, a seed of your choice, and optionally every prefix alias (/v1, /v3/v1, ...).
Prints requests by status per operation; exits 1 on any failure.

    python bench/fuzz.py --examples 100 --seed 7
    python bench/fuzz.py --examples 20 --all-operations
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import print_table  # noqa: E402  (puts the repository root on sys.path)

from tests import fuzz_support  # noqa: E402
from tests.server import ServerProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="examples per operation and generation mode")
    parser.add_argument("--seed", type=int, default=0, help="0: derandomized (as the CI test)")
    parser.add_argument("--all-operations", action="store_true", help="every path, prefix aliases included")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess("--config_path", str(fuzz_support.write_config(Path(tmp))), "--metrics_enable",
                               log_name="bench-fuzz").start()
        try:
            started = time.monotonic()
            per_operation: dict[str, Counter[int]] = {}
            report = fuzz_support.fuzz(server.url, ".*" if args.all_operations else fuzz_support.OPERATIONS,
                                       args.examples, args.seed, per_operation=per_operation)
            elapsed = time.monotonic() - started
            faults = server.log().count("unhandled error")
        finally:
            server.stop()
    statuses = sorted({s for counts in per_operation.values() for s in counts})
    rows = [[op, sum(c.values()), *(c.get(s, 0) for s in statuses)] for op, c in per_operation.items()]
    print_table(["operation", "requests", *map(str, statuses)], rows)
    print(f"\n{report.summary()} in {elapsed:.0f} s; server faults logged: {faults}")
    for failure in report.failures:
        print(f"\nFAILURE {failure}")
    return 1 if report.failures or faults or any(s >= 500 for s in report.statuses) else 0


if __name__ == "__main__":
    sys.exit(main())
