"""Hidden check for testing templates: the agent's tests pass on the real code and fail on
every mutant (no Django needed).

    python -m collection.task_templates.verify_mutants MUTANTS_DIR TEST_MODULE   (cwd: the sandbox)

Each folder in MUTANTS_DIR holds files that, laid over a copy of the workspace, plant one
plausible bug the tests must catch.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

MUTANTS = pathlib.Path(sys.argv[1])
TIMEOUT_S = 5  # tests that hang or crawl on a mutant have caught it
test_module = sys.argv[2]
work = pathlib.Path.cwd()


def run_tests(folder):
    try:
        done = subprocess.run(
            [sys.executable, "-m", "unittest", "-q", test_module],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return done.returncode == 0, done.stdout + done.stderr


passed, output = run_tests(work)
if not passed:
    sys.exit(f"the tests fail on the real code:\n{output[-2000:]}")
if "Ran 0 tests" in output:
    sys.exit(f"{test_module} has no tests")
survivors = []
for mutant in sorted(p for p in MUTANTS.iterdir() if p.is_dir()):
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "work"
        shutil.copytree(work, copy, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(mutant, copy, dirs_exist_ok=True)
        if run_tests(copy)[0]:
            survivors.append(mutant.name)
if survivors:
    sys.exit(f"the tests pass with these bugs planted: {', '.join(survivors)}")
print(f"the tests catch all {len(list(MUTANTS.iterdir()))} planted bugs")
