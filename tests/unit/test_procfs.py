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


# -- System V shared memory and thread context switches (connections --real) ------------------

SHM_HEADER = (
    "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid"
    "      atime      dtime      ctime                   rss                  swap"
)


def test_sysv_shm_segments_by_id_with_their_key_and_attachments():
    from ostoolkit.procfs import parse_sysv_shm

    text = "\n".join(
        [
            SHM_HEADER,
            "   5432001          3   600                 56  1234  1234      6   109   116   109"
            "   116 1700000000 1700000000 1700000000                  4096                     0",
            "         0         17  1600            1048576  99  100      0     0     0     0     0"
            "          0          0 1700000000                     0                     0",
            "this line is not a segment",
            "  -42",  # too short: the columns after it are missing
            "",
        ]
    )
    assert parse_sysv_shm(text) == {3: (5432001, 6), 17: (0, 0)}


def test_sysv_shm_columns_are_found_by_their_header_names():
    from ostoolkit.procfs import parse_sysv_shm

    text = "nattch shmid perms key\n2 9 600 -7\nx 10 600 1\n"
    assert parse_sysv_shm(text) == {9: (-7, 2)}


def test_sysv_shm_without_text_or_known_header_has_no_segments():
    from ostoolkit.procfs import parse_sysv_shm

    assert parse_sysv_shm("") == {}
    assert parse_sysv_shm("key shmid size\n1 2 3\n") == {}  # no nattch column


def test_task_switches_sum_every_threads_status(tmp_path):
    from ostoolkit.procfs import read_task_switches

    task = tmp_path / "7" / "task"
    for tid, voluntary, involuntary in ((7, 100, 5), (8, 30, 2)):
        (task / str(tid)).mkdir(parents=True)
        (task / str(tid) / "status").write_text(
            f"Name:\tpostgres\nPid:\t{tid}\nvoluntary_ctxt_switches:\t{voluntary}\n"
            f"nonvoluntary_ctxt_switches:\t{involuntary}\n"
        )
    (task / "9").mkdir()  # a thread that ended while the folder was read: no status
    (tmp_path / "7" / "status").write_text("voluntary_ctxt_switches:\t100000\n")  # not summed
    assert read_task_switches(7, proc=tmp_path) == 137
    assert read_task_switches(99, proc=tmp_path) == 0


def test_task_run_ns_sums_every_live_threads_schedstat(tmp_path):
    from ostoolkit.procfs import read_task_run_ns

    for tid, line in ((42, "1000 5 3\n"), (43, "2500 7 9\n")):
        folder = tmp_path / "42" / "task" / str(tid)
        folder.mkdir(parents=True)
        (folder / "schedstat").write_text(line)
    (tmp_path / "42" / "task" / "44").mkdir()  # no schedstat: this kernel lacks it
    assert read_task_run_ns(42, tmp_path) is None
    (tmp_path / "42" / "task" / "44").rmdir()
    assert read_task_run_ns(42, tmp_path) == 3500
    assert read_task_run_ns(99, tmp_path) == 0  # gone: no live thread


def test_status_fields_of_a_process_and_of_one_that_is_gone(tmp_path):
    from ostoolkit.procfs import read_status_fields

    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "status").write_text(
        "Name:\tpython\nVmStk:\t     132 kB\nVmPTE:\t      84 kB\nThreads:\t3\nVmSwap:\t0 kB\n"
    )
    wanted = ("VmPTE", "VmStk", "Threads")
    assert read_status_fields(7, wanted, proc=tmp_path) == {"VmPTE": 84, "VmStk": 132, "Threads": 3}
    assert read_status_fields(99, wanted, proc=tmp_path) == {}
