"""`python -m curation import`: good rows kept, bad input refused whole, the database as before."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

from curation.cli import main
from db import repo
from db.engine import open_database, session_for
from tests.conftest import FIXTURES, REPO


def counts(db_url):
    engine = open_database(db_url)
    with session_for(engine) as session:
        result = repo.table_counts(session)
    engine.dispose()
    return result


def records(db_url, dataset):
    engine = open_database(db_url)
    with session_for(engine) as session:
        found = repo.get_dataset(session, dataset)
        result = [(r.instruction, r.input, r.outputs, r.status.value) for r in repo.iter_records(session, found.id)]
    engine.dispose()
    return result


def test_good_rows_are_imported_and_each_rejected_row_reported(db_url, capsys):
    assert main(["--db", db_url, "import", str(FIXTURES / "alpaca_small.json"), "--dataset", "demo"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{FIXTURES / 'alpaca_small.json'}: alpaca, 7 rows read, 4 imported, 1 duplicates skipped, 2 rejected",
        "dataset 'demo': 4 records imported, 1 duplicates skipped, 2 rows rejected",
    ]
    assert err.splitlines() == ["  rejected index 4: empty instruction", "  rejected index 5: 'input' must be text, not list"]
    assert [r[0] for r in records(db_url, "demo")] == [
        "Name the capital of Kenya.", "Translate the word to French.", "Summarize the sentence in three words.",
        "List two prime numbers."]
    assert counts(db_url)["revision"] == 4


def test_strict_mode_writes_nothing(db_url, capsys):
    before = counts(db_url)
    assert main(["--db", db_url, "import", str(FIXTURES / "alpaca_small.json"), "--dataset", "demo", "--strict"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {FIXTURES / 'alpaca_small.json'}: 2 row(s) rejected in strict mode, nothing imported "
        "(first: index 4: empty instruction)")
    assert counts(db_url) == before


def test_keep_duplicates_stores_them_for_the_curator(db_url):
    assert main(["--db", db_url, "import", str(FIXTURES / "alpaca_small.json"), "--dataset", "demo",
                 "--keep-duplicates"]) == 0
    assert [r[0] for r in records(db_url, "demo")].count("  Name the capital\tof Kenya. ") == 1
    assert len(records(db_url, "demo")) == 5


def test_a_second_import_of_the_same_file_skips_everything(db_url, capsys):
    for _ in range(2):
        main(["--db", db_url, "import", str(FIXTURES / "dolly_small.jsonl"), "--dataset", "demo"])
    assert capsys.readouterr().out.splitlines()[-1] == "dataset 'demo': 0 records imported, 2 duplicates skipped, 0 rows rejected"


@pytest.mark.parametrize("name, content, message", [
    ("truncated.json", b'[{"instruction": "a", "output": "b"}, {"instr', "is not valid JSON (it ends early at line 1: truncated?)"),
    ("binary.json", bytes(range(256)), "is a binary file, not text (JSON, JSONL, CSV) or Parquet"),
    ("empty.jsonl", b"", "the file is empty"),
])
def test_unreadable_files_exit_2_with_one_line_and_change_nothing(db_url, tmp_path, capsys, name, content, message):
    main(["--db", db_url, "import", str(FIXTURES / "dolly_small.jsonl"), "--dataset", "demo"])
    before = counts(db_url)
    capsys.readouterr()
    path = tmp_path / name
    path.write_bytes(content)
    # A good file alongside a bad one: the whole command is refused.
    assert main(["--db", db_url, "import", str(FIXTURES / "messages_small.jsonl"), str(path), "--dataset", "demo"]) == 2
    assert capsys.readouterr().err == f"error: {path}: {message}\n"
    assert counts(db_url) == before


def test_a_csv_missing_its_mapped_column_exits_2_and_changes_nothing(db_url, capsys):
    before = counts(db_url)
    assert main(["--db", db_url, "import", str(FIXTURES / "table_small.csv"), "--dataset", "demo",
                 "--map", "instruction=prompt", "--map", "output=answer"]) == 2
    assert capsys.readouterr().err == (f"error: {FIXTURES / 'table_small.csv'}: has no column 'prompt' to map "
                                       "(columns: question, context, answer, topic)\n")
    assert counts(db_url) == before


def test_the_command_line_runs_as_a_module_quietly_off_a_terminal(sqlite_url):
    result = subprocess.run(
        [sys.executable, "-m", "curation", "--db", sqlite_url, "import", str(FIXTURES / "sni_small_task.json"),
         "--dataset", "sni"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stderr == ""  # no progress bar off a terminal
    assert result.stdout.splitlines()[-1] == "dataset 'sni': 3 records imported, 0 duplicates skipped, 0 rows rejected"


def test_an_interrupted_import_leaves_no_partial_batch(db_url):
    from curation.importer import import_files

    rows = [{"instruction": f"Write the number {i} in words.", "output": str(i)} for i in range(12000)]
    engine = open_database(db_url)

    def interrupt_after_first_batch(done, total):
        if done >= 5000:
            raise KeyboardInterrupt

    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, "numbers.json")
        with open(file, "w") as out:
            json.dump(rows, out)
        before = counts(db_url)
        with session_for(engine) as session, pytest.raises(KeyboardInterrupt):
            import_files(session, "numbers", [file], progress=interrupt_after_first_batch)
    engine.dispose()
    assert counts(db_url) == before


def test_a_killed_import_process_leaves_no_partial_batch(sqlite_url, tmp_path):
    rows = [{"instruction": f"Spell the number {i}.", "output": str(i)} for i in range(12000)]
    (tmp_path / "numbers.json").write_text(json.dumps(rows))
    script = textwrap.dedent(f"""
        import sys, time
        from curation.importer import import_files
        from db.engine import open_database, session_for
        def report(done, total):
            if done >= 5000:
                print("first batch written", flush=True)
                time.sleep(60)
        with session_for(open_database({sqlite_url!r})) as session:
            import_files(session, "numbers", [{str(tmp_path / 'numbers.json')!r}], progress=report)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "first batch written"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert counts(sqlite_url)["record"] == 0
    assert counts(sqlite_url)["dataset"] == 0


def test_a_terminal_gets_a_progress_bar(sqlite_url):
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    result = subprocess.run(
        [sys.executable, "-m", "curation", "--db", sqlite_url, "import", str(FIXTURES / "dolly_small.jsonl"),
         "--dataset", "tty"], cwd=REPO, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=120)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert result.returncode == 0
    assert b"importing: 100%" in shown and b"2/2" in shown
