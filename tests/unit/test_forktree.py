"""Pure logic of fork-tree: sizes, limits, nesting and drawing from hand-written ppid maps."""

import os

import pytest
from click.testing import CliRunner

from ostoolkit import cli as cli_module
from ostoolkit.errors import TreeTooLarge
from ostoolkit.measure.forktree import (
    TreeConfig,
    check_tree,
    flatten,
    nest,
    report_lines,
    tree_size,
    unread_uss_warnings,
)
from ostoolkit.render import draw_tree


def node(pid, ppid, name="python", **extra):
    return {"pid": pid, "ppid": ppid, "name": name, "status": "sleeping", "rss": 2048, **extra}


def test_tree_size():
    assert tree_size(3, 2) == 14
    assert tree_size(3, 2, exec_leaves=True) == 22
    assert tree_size(1, 5) == 5
    assert tree_size(2, 1, exec_leaves=True) == 3


def test_expected_report_lines():
    # 5 bare forks timed, 15 ready lines (the root's too), 14 forks, 8 execs
    assert report_lines(TreeConfig(3, 2, exec_leaves=True)) == 5 + 15 + 14 + 8
    assert report_lines(TreeConfig(3, 2)) == 5 + 15 + 14
    assert report_lines(TreeConfig(1, 3)) == 5 + 4 + 3


def test_check_tree_refuses_over_max_procs_before_forking():
    with pytest.raises(TreeTooLarge, match="starts 22 processes, over --max-procs 20"):
        check_tree(TreeConfig(3, 2, exec_leaves=True, max_procs=20))
    assert check_tree(TreeConfig(3, 2)) == 14


def test_nest_orders_children_and_counts():
    nodes = {10: node(10, 1), 12: node(12, 10), 11: node(11, 10), 13: node(13, 11)}
    tree = nest(nodes, 10)
    assert [kid["pid"] for kid in tree["children"]] == [11, 12]
    assert tree["children"][0]["children"][0]["pid"] == 13
    assert [n["pid"] for n in flatten(tree)] == [10, 11, 13, 12]


def test_draw_tree_exact():
    nodes = {
        10: node(10, 1, "ostoolkit", uss=1024),
        11: node(11, 10, fork_us=812.5),
        12: node(12, 11, "cat", fork_us=90.0, exec_us=2500.0),
        13: node(13, 10, fork_us=700.0),
    }
    assert draw_tree(nest(nodes, 10)) == (
        "ostoolkit(10) sleeping rss 2.0 KiB uss 1.0 KiB\n"
        "├─ python(11) sleeping rss 2.0 KiB fork 812.5 µs\n"
        "│  └─ cat(12) sleeping rss 2.0 KiB fork 90.00 µs fork+exec 2,500 µs\n"
        "└─ python(13) sleeping rss 2.0 KiB fork 700.0 µs"
    )


def test_draw_tree_with_threads_as_pstree_does():
    """Threads first, in braces, then the child processes."""
    nodes = {
        10: {
            **node(10, 1, "mariadbd"),
            "threads": [
                {"tid": 21, "name": "one_conn", "state": "S"},
                {"tid": 22, "name": "two_conn", "state": "R"},
            ],
        },
        11: {**node(11, 10, fork_us=812.5), "threads": []},
    }
    assert draw_tree(nest(nodes, 10)) == (
        "mariadbd(10) sleeping rss 2.0 KiB\n"
        "├─ {one_conn}(21) S\n"
        "├─ {two_conn}(22) R\n"
        "└─ python(11) sleeping rss 2.0 KiB fork 812.5 µs"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "0"], "--depth"),
        (["--breadth", "65"], "--breadth"),
        (["--max-procs", "0"], "--max-procs"),
        (["--pid", "1", "--exec"], "--exec builds a tree"),
        (["--pid", "1", "--hold"], "--hold keeps a tree"),
        (["--threads"], "--threads draws an existing process's threads: give --pid"),
        (["--depth", "10", "--breadth", "3"], "over --max-procs 512"),
    ],
)
def test_fork_tree_bad_input_exit_2(args, message):
    result = CliRunner().invoke(cli_module.cli, ["fork-tree", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_draw_tree_marks_a_uss_that_could_not_be_read():
    """uss None (the kernel refused it) is drawn "uss ?"; a node without the key draws none."""
    nodes = {10: node(10, 1, "init", uss=None), 11: node(11, 10, uss=4096), 12: node(12, 10)}
    assert draw_tree(nest(nodes, 10)) == (
        "init(10) sleeping rss 2.0 KiB uss ?\n"
        "├─ python(11) sleeping rss 2.0 KiB uss 4.0 KiB\n"
        "└─ python(12) sleeping rss 2.0 KiB"
    )


@pytest.mark.parametrize(
    ("euid", "why"),
    [
        (65534, "they belong to other users; run as root to see them"),
        (0, "even root may not read them here"),
    ],
)
def test_unread_uss_is_counted_in_one_warning(monkeypatch, euid, why):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    nodes = {1: node(1, 0, uss=None), 2: node(2, 1, uss=None), 3: node(3, 1, uss=10)}
    (said,) = unread_uss_warnings(nest(nodes, 1))
    assert said.startswith(f"USS of 2 of 3 processes could not be read: {why}")
    assert unread_uss_warnings(nest({3: node(3, 1, uss=10)}, 3)) == []
