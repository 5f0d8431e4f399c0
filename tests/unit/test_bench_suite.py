"""bench/suite.py's reading of pytest's junit report."""
from bench.suite import summarize

REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
skipped="1" tests="4" time="12.5"><testcase classname="tests.unit.test_a" name="test_fast" time="0.010"/>
<testcase classname="tests.lab.test_b" name="test_slow[x]" time="10.000"/>
<testcase classname="tests.lab.test_b" name="test_mid" time="2.000"><failure message="boom"/></testcase>
<testcase classname="tests.unit.test_a" name="test_skipped" time="0.001"><skipped/></testcase></testsuite></testsuites>"""


def test_counts_slowest_first_and_time_per_directory():
    summary = summarize(REPORT)
    assert (summary["tests"], summary["failures"], summary["errors"], summary["skipped"]) == (4, 1, 0, 1)
    assert [s["test"] for s in summary["slowest"][:2]] == ["tests/lab/test_b.py::test_slow[x]",
                                                          "tests/lab/test_b.py::test_mid"]
    assert summary["seconds_by_directory"] == {"tests/lab": 12.0, "tests/unit": 0.0}
