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


import shipping  # noqa: E402

before = original("shipping")
for method in ["ground", "air", "sea"]:
    for weight in [0, 0.5, 1, 9.99, 10, 33.3, 250]:
        for express in [False, True]:
            want = before.shipping_cost(weight, method, express)
            got = shipping.shipping_cost(weight, method, express=express)
            if got != want:
                sys.exit(f"shipping_cost({weight}, {method!r}, {express}) = {got}, was {want}")
try:
    shipping.shipping_cost(1, "teleport")
except ValueError as exc:
    if str(exc) != "unknown shipping method: teleport":
        sys.exit(f"the unknown-method message changed: {exc}")
else:
    sys.exit("an unknown method must still raise ValueError")
if any(f'"{m}"' in inspect.getsource(shipping.shipping_cost) for m in ("ground", "air", "sea")):
    sys.exit("shipping_cost() still names the methods: use the registry")
shipping.register("drone")(lambda weight_kg: 999 + weight_kg)
if shipping.shipping_cost(1, "drone") != 1000 or shipping.shipping_cost(1, "drone", True) != 1500:
    sys.exit("a method registered with register() is not used by shipping_cost()")
if set(shipping.available_methods()) != {"ground", "air", "sea", "drone"}:
    sys.exit(f"available_methods() is wrong: {shipping.available_methods()}")
print("golden ok")
