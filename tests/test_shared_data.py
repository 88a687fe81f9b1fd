"""The real public data in ../shared/data: every file imports with the right format and counts,
and every SNI task comes back out of the store equal to its file."""
import json

import pytest

from curation.cli import main
from db import repo
from db.engine import open_database, session_for
from tests.conftest import SHARED_DATA, requires_shared_data

pytestmark = requires_shared_data

# file -> (format detected, rows read, records imported, duplicates skipped)
EXPECTED = {
    "alpaca_format/stanford_alpaca_52k.json": ("alpaca", 52002, 52002, 0),
    "alpaca_format/llamafactory_alpaca_en_demo.json": ("alpaca", 999, 985, 14),
    "alpaca_format/llamafactory_alpaca_zh_demo.json": ("alpaca", 1000, 992, 8),
    "alpaca_format/codealpaca_2k.json": ("alpaca", 2017, 2017, 0),
    "alpaca_format/gpteacher_codegen.json": ("alpaca", 4535, 4535, 0),
    "alpaca_format/gpteacher_roleplay.json": ("alpaca", 1923, 1923, 0),
    "alpaca_format/gsm8k_train_alpaca.json": ("alpaca", 7473, 7473, 0),
    "seeds/self_instruct_seed_tasks.jsonl": ("self-instruct", 175, 175, 0),
    "seeds/self_instruct_user_oriented_instructions.jsonl": ("self-instruct", 252, 252, 0),
    "seeds/wizardlm_testset.jsonl": ("alpaca", 218, 217, 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_imports_with_the_right_format_and_counts(sqlite_url, capsys, name):
    path = SHARED_DATA / name
    assert main(["--db", sqlite_url, "import", str(path), "--dataset", "shared"]) == 0
    fmt, read, imported, skipped = EXPECTED[name]
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{path}: {fmt}, {read} rows read, {imported} imported, {skipped} duplicates skipped, 0 rejected")


def test_all_sni_tasks_import_and_export_equal_to_their_files(db_url, tmp_path, capsys):
    files = sorted((SHARED_DATA / "sni").glob("*.json"))
    assert len(files) == 32
    assert main(["--db", db_url, "import", *map(str, files), "--dataset", "sni"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "dataset 'sni': 21268 records imported, 0 duplicates skipped, 0 rows rejected")
    assert main(["--db", db_url, "export", "--dataset", "sni", "--format", "sni", "--out", str(tmp_path / "out")]) == 0
    for file in files:
        original = json.loads(file.read_text())
        exported = json.loads((tmp_path / "out" / file.name).read_text())
        assert exported == original, file.name
        assert list(exported) == list(original)
        assert [list(i) for i in exported["Instances"]] == [list(i) for i in original["Instances"]]
    engine = open_database(db_url)
    with session_for(engine) as session:
        assert repo.table_counts(session)["task"] == 32
    engine.dispose()
