"""lmbench's net cost, and the blocks whose round trip came out shorter than its baseline."""

import pytest

from ostoolkit.measure.netcost import net_per_hop, positive_blocks


def test_net_per_hop_is_lmbench_s():
    assert net_per_hop([6.0, 8.0], [1.0, 0.5]) == [2.0, 3.5]
    with pytest.raises(ValueError, match=r"shorter|longer"):
        net_per_hop([6.0], [1.0, 2.0])


def test_a_negative_sample_takes_its_whole_block_out_and_says_which():
    net = positive_blocks([2.0, 2.1, 2.2, -9.0, 2.0, 1.9], [3, 3])
    assert net.samples == [2.0, 2.1, 2.2]
    assert net.runs == [3]
    assert len(net.notes) == 1
    assert "1 of 2 blocks" in net.notes[0]
    assert "2 (-9.00 µs)" in net.notes[0]


def test_every_block_negative_leaves_no_figure():
    net = positive_blocks([-1.0, 2.0], None)  # one block
    assert net.samples == []
    assert net.runs == []
    assert "1 of 1 blocks" in net.notes[0]


def test_positive_blocks_are_kept_as_they_are():
    net = positive_blocks([0.0, 1.0, 2.0], [1, 2])
    assert (net.samples, net.runs, net.notes) == ([0.0, 1.0, 2.0], [1, 2], [])
