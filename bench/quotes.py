"""Quote stripping and forward finding: 1,000 typical bodies, and each pathological body. Prints figures."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from service.intake.quotes import find_forward, strip_quotes  # noqa: E402
from tests.unit.test_quotes import CASES, PATHOLOGICAL, _case_text  # noqa: E402


def main() -> None:
    bodies = [_case_text(case) for case in CASES]
    started = time.perf_counter()
    for body in bodies:  # the first forwarded date loads dateparser and its languages, once per process
        find_forward(body)
    print(f"first reading of the {len(bodies)} corpus bodies: {time.perf_counter() - started:.3f} s")
    bodies = (bodies * (1000 // len(bodies) + 1))[:1000]
    started = time.perf_counter()
    for body in bodies:
        strip_quotes(body)
        find_forward(body)
    print(f"1,000 typical bodies: {time.perf_counter() - started:.3f} s")
    for name, body in sorted(PATHOLOGICAL.items()):
        started = time.perf_counter()
        strip_quotes(body)
        find_forward(body)
        print(f"{name:<14} {len(body) / 1e6:5.1f} MB: {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
