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


import accounts  # noqa: E402

CALLS = [
    ("signup", "ann", "ann@example.com", "12345"),
    ("signup", "Ann!", "not-an-email", "1234"),
    ("signup", "bo", "bo@example.com", "54321"),
    ("signup", "carol_1", "carol@example.org", "abcde"),
    ("update_profile", "ann", "ann@new.example.com", "99999"),
    ("update_profile", "ann", "broken@", "9"),
    ("update_profile", "nobody", "x@example.com", "11111"),
    ("signup", "dave", "dave@example.io", "00000"),
]


def replay(module):
    module.USERS.clear()
    results = [getattr(module, name)(*args) for name, *args in CALLS]
    return results, dict(module.USERS)


if replay(accounts) != replay(original("accounts")):
    sys.exit("signup/update_profile behave differently than before")
import validation  # noqa: E402

if validation.validate_username("ann") != [] or not validation.validate_username("A"):
    sys.exit("validation.validate_username() is wrong")
if validation.validate_contact("a@b.co", "12345") != []:
    sys.exit("validation.validate_contact() rejects a valid contact")
if len(validation.validate_contact("nope", "1")) != 2:
    sys.exit("validation.validate_contact() must report both fields")
if "fullmatch" in inspect.getsource(accounts):
    sys.exit("accounts.py still validates fields itself")
print("golden ok")
