"""Property-based fuzzing (schemathesis) of the server against its own /openapi.json.

Every operation of tests/fuzz_support.py gets a bounded number of generated requests, valid and
invalid by the schema, from a fixed seed: no answer may be a 5xx, and every answer must be
documented (status code, content type, body schema). bench/fuzz.py runs more examples.
(schemathesis' own pytest plugin needs pytest < 9, so the operations are driven here.)
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from tests.fuzz_support import OPERATIONS, fuzz, write_config  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

MAX_EXAMPLES = 10  # per operation and generation mode


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = ServerProcess("--config_path", str(write_config(tmp_path_factory.mktemp("fuzz"))), "--metrics_enable",
                           log_name="fuzz").start()
    yield server
    server.stop()


def test_no_server_error_and_every_answer_is_documented(fuzz_server):
    report = fuzz(fuzz_server.url, OPERATIONS, MAX_EXAMPLES)
    print(report.summary())
    assert len(report.operations) >= 15, report.operations
    assert not report.failures, "\n\n".join(report.failures)
    assert report.statuses.get(200, 0) > 0 and report.statuses.get(400, 0) > 0  # it got past validation too
    assert not any(status >= 500 for status in report.statuses)


def test_fuzzed_server_logged_no_server_fault(fuzz_server):
    assert "unhandled error" not in fuzz_server.log()
