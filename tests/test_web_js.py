"""The browser edition's JS against the Python it mirrors: tests/js/known_values.json holds what Python
computes (noise, grids, sampler runs on a toy denoiser, the app's form messages); this checks that Python
still computes it, and `node --test tests/js/` checks that fastdiff/web/*.js computes the same."""

import importlib.util
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).resolve().parent / "js"


def load_maker():
    spec = importlib.util.spec_from_file_location("make_known_values", JS_TESTS / "make_known_values.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_close(actual, expected, where="values"):
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6), where
    else:
        assert actual == expected, where


def test_python_still_computes_the_values_the_js_tests_pin():
    maker = load_maker()
    assert_close(json.loads(json.dumps(maker.known_values())), json.loads(maker.PATH.read_text()))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node 20 (node --test)")
def test_the_js_modules_pass_their_node_tests():
    result = subprocess.run(["node", "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
