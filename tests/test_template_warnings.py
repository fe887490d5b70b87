"""A template whose verifier can't run here loads, with a warning on the templates page."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from collection.task_templates import TaskTemplateLibrary
from collection.task_templates.validation import missing_programs

LIBRARY = TaskTemplateLibrary.load()
NOT_FOUND = "is not installed here"


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("no-such-verifier --check", ["no-such-verifier"]),
        ("python3 -m unittest -q && ./run_checks.sh", ["./run_checks.sh"]),
        ("FOO=1 cd src && grep -q x y | nosuch -x; if true; then zzz; fi", ["nosuch", "zzz"]),
        ("python3 test.py > out.txt 2>&1 || exit 1", []),
        ("/usr/bin/env python3 -c 'import nosuch'", []),
        ("sh check.sh", []),  # sh exists; what it runs is its business
    ],
)
def test_missing_programs_names_what_the_shell_would_not_find(command, missing, tmp_path):
    assert missing_programs(command, tmp_path) == missing


def test_a_program_in_the_workspace_is_found(tmp_path):
    (tmp_path / "run_checks.sh").write_text("exit 0\n")
    assert missing_programs("./run_checks.sh", tmp_path) == []


def test_a_command_with_unbalanced_quotes_is_an_error_not_a_guess(tmp_path):
    with pytest.raises(ValueError, match="No closing quotation"):
        missing_programs("echo 'oops", tmp_path)


def test_no_builtin_template_has_a_warning():
    assert {t.name: t.warnings for t in LIBRARY if t.warnings} == {}


def user_template(root: Path, name: str, verifier: str) -> Path:
    original = LIBRARY.get("fix_failing_median")
    folder = root / original.category / name
    shutil.copytree(original.root, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(name=name, verifier=verifier)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.django_db
def test_a_user_template_whose_verifier_is_missing_loads_with_a_warning_on_its_page(
    client, viewer, settings, tmp_path
):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path]
    user_template(tmp_path, "fix_with_missing_verifier", "no-such-verifier --strict")
    library = TaskTemplateLibrary.load()
    template = library.get("fix_with_missing_verifier")  # loaded, not an error
    assert library.errors == []
    [warning] = template.warnings
    assert "'no-such-verifier'" in warning and NOT_FOUND in warning

    client.force_login(viewer)
    page = client.get("/templates/").content.decode()
    assert page.count(NOT_FOUND) == 1
    assert "no-such-verifier" in page


@pytest.mark.django_db
def test_an_uploaded_template_whose_verifier_is_missing_says_so_when_added(
    client, admin_user, settings, tmp_path
):
    settings.TRAININGDASH_TEMPLATE_DIRS = [tmp_path / "user-templates"]
    settings.DATA_DIR = tmp_path / "data"  # the upload goes to this data folder's store
    folder = user_template(tmp_path / "src", "uploaded_missing_verifier", "nosuch-check")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in folder.rglob("*"):
            if path.is_file():
                zf.write(path, f"{folder.name}/{path.relative_to(folder)}")
    buf.seek(0)
    buf.name = "template.zip"

    client.force_login(admin_user)
    response = client.post("/templates/", {"archive": buf})
    page = response.content.decode()
    assert response.status_code == 200, page[-2000:]
    assert "Added template “uploaded_missing_verifier”" in page
    assert "Warning: the verifier runs &#x27;nosuch-check&#x27;" in page
