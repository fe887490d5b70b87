"""Hidden check: behaviour is unchanged (golden outputs from the original code)."""

import importlib.util
import inspect  # noqa: F401
import os
import pathlib
import sys

sys.path.insert(0, os.getcwd())
sys.dont_write_bytecode = True  # keep checks/ free of __pycache__


def original(name):
    """The module as it was before the refactoring (kept in checks/original/)."""
    path = pathlib.Path(__file__).resolve().parent / "original" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"original_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import report  # noqa: E402

before = original("report")
for cents in [0, 5, 99, 100, 123456, 100000000, 7]:
    for text in ["Consulting", "x" * 40]:
        for name in ["invoice_line", "refund_line"]:
            if getattr(report, name)(text, cents) != getattr(before, name)(text, cents):
                sys.exit(f"{name}({text!r}, {cents}) changed")
    if report.summary_line("Q3", cents, 4) != before.summary_line("Q3", cents, 4):
        sys.exit(f"summary_line(..., {cents}, ...) changed")
if not callable(getattr(report, "format_amount", None)):
    sys.exit("report.format_amount() is missing")
if report.format_amount(123456) != "1,234.56":
    sys.exit("format_amount(123456) must be '1,234.56'")
source = inspect.getsource(report)
if source.count("// 100") != 1:
    sys.exit("the amount formatting is still duplicated")
print("golden ok")
