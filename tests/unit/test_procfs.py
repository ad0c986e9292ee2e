"""Pure /proc parsing: a task's name and state; the threads of a process from a fake /proc."""

from ostoolkit.procfs import parse_task_stat, read_threads


def test_a_task_name_may_hold_spaces_and_parentheses():
    assert parse_task_stat("42 (my (odd) name) S 1 2 3") == ("my (odd) name", "S")


def test_threads_come_from_the_task_folder_without_the_main_one(tmp_path):
    task = tmp_path / "7" / "task"
    for tid, line in ((7, "7 (server) S 1"), (9, "9 (conn 2) R 1"), (8, "8 (conn 1) S 1")):
        (task / str(tid)).mkdir(parents=True)
        (task / str(tid) / "stat").write_text(line)
    (task / "10").mkdir()  # a thread that ended while the folder was read: no stat
    assert read_threads(7, proc=tmp_path) == [
        {"tid": 8, "name": "conn 1", "state": "S"},
        {"tid": 9, "name": "conn 2", "state": "R"},
    ]
    assert read_threads(99, proc=tmp_path) == []
