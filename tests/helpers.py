"""Shared by the tests of the assignment checks: the shipped generator and a failed-check assertion."""
import pytest
from hybridlat.pretrained import load_pretrained


@pytest.fixture(scope='module')
def G(): return load_pretrained('faces128')


def failed(result, *texts):
    "The result failed and its report contains every one of `texts`."
    report = result.report()
    assert not result, report
    for t in texts: assert t in report, report
    return report
