"""The NAS-Bench-201 network: operations, cells, shapes and parameter counts.

Parameter counts worked out by hand (C=16, N=5, 10 classes, conv bias off when BN is affine):
- stem: Conv3x3 3->16 (432) + BN(16) (32) = 464
- reduction block 16->32: 3x3 convs 4,608 + 9,216, two BN(32) 128, shortcut 1x1 conv 512 = 14,464
- reduction block 32->64: 18,432 + 36,864 + 256 + 2,048 = 57,600
- last BN(64) 128; classifier 64*10 + 10 = 650
- total without cell parameters: 73,306 (the table's smallest ``params_M``, 0.073306)
- one nor_conv_3x3 edge in all 15 cells: 5 * ((16*16*9 + 32) + (32*32*9 + 64) + (64*64*9 + 128)) = 243,040
- one nor_conv_1x1 edge: 5 * ((256 + 32) + (1,024 + 64) + (4,096 + 128)) = 28,000
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch

from evonas.errors import ArchError, ConfigError
from evonas.models import OPS, NB201Cell, NB201Network, ResNetBasicBlock, count_parameters
from evonas.spaces import get_space
from evonas.spaces import OPS as SPACE_OPS

BASE, CONV3, CONV1 = 73_306, 243_040, 28_000
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

# Rows of nb201.csv.gz whose params_M disagrees with the network of their arch string by
# exactly one conv edge (±28,000 or ±243,040). NASLib's independently computed parameter
# counts (zero-cost/zc_nasbench201.json) agree with this module for the ten of them it
# covers (test_table_outliers_agree_with_naslib), so the table rows are the outliers.
TABLE_PARAM_OUTLIERS = frozenset({
    327, 737, 768, 770, 775, 1151, 2958, 3034, 3077, 3103, 3113, 3400, 3681, 3899, 4024, 4070, 4137, 4165,
    4227, 4248, 4464, 4578, 4650, 4815, 4982, 5010, 5065, 5694, 5751, 5824, 5835, 6545, 6547, 6769, 6877,
    6912, 6977, 7263, 7268, 7326, 7358, 7396, 7629, 7717, 7785, 7793, 7894, 7950, 7981, 8181, 8280, 8322,
    8423, 8447, 8533, 8540, 8557, 8719, 8809, 8965, 9043, 9141, 9172, 9270, 9296, 9444, 9473, 9597, 9632,
    9654, 9735, 10107, 10118, 10162, 10167, 10207, 10212, 10281, 10308, 10340, 10369, 10597, 10709, 10821,
    10906, 10947, 10978, 11073, 11096, 11167, 11222, 11238, 11259, 11370, 11374, 11511, 11514, 11581, 11676,
    11843, 11911, 11961, 11964, 12016, 12121, 12187, 12204, 12271, 12316, 12317, 12464, 12540, 12542, 12568,
    12707, 12748, 12822, 12844, 12939, 13003, 13223, 13326, 13479, 13492, 13599, 13970, 14264, 14267, 14293,
    14412, 14419, 14529, 14648, 14661, 14684, 14689, 14995, 15033, 15036, 15040, 15107, 15347, 15372, 15386,
    15392, 15403, 15435, 15474, 15484, 15539,
})


def _sig6(n: int) -> float:
    """A parameter count in millions with 6 significant digits, as the table stores it."""
    return float(f"{n / 1e6:.6g}")


# ------------------------------------------------------------------------------ ops
def test_ops_cover_the_space_in_order():
    assert tuple(OPS) == SPACE_OPS


@pytest.mark.parametrize("name", SPACE_OPS)
@pytest.mark.parametrize(
    ("c_in", "c_out", "stride", "size", "out_size"), [(8, 8, 1, 6, 6), (4, 8, 2, 7, 4), (8, 4, 1, 5, 5)]
)
def test_op_output_shapes(name, c_in, c_out, stride, size, out_size):
    op = OPS[name](c_in, c_out, stride)
    y = op(torch.randn(2, c_in, size, size))
    assert y.shape == (2, c_out, out_size, out_size)


def test_op_parameters_and_identity():
    assert count_parameters(OPS["none"](16, 16, 1)) == 0
    assert count_parameters(OPS["avg_pool_3x3"](16, 16, 1)) == 0
    assert isinstance(OPS["skip_connect"](16, 16, 1), torch.nn.Identity)
    assert count_parameters(OPS["nor_conv_3x3"](16, 16, 1)) == 16 * 16 * 9 + 2 * 16
    # without an affine BN the convolution gets the bias instead
    assert count_parameters(OPS["nor_conv_3x3"](16, 16, 1, affine=False)) == 16 * 16 * 9 + 16
    assert count_parameters(OPS["nor_conv_1x1"](16, 32, 1)) == 16 * 32 + 2 * 32
    # skip with stride 2: two 1x1 convs of 4 and 4 output channels + BN(8)
    assert count_parameters(OPS["skip_connect"](4, 8, 2)) == 4 * 4 + 4 * 4 + 2 * 8


def test_zero_is_zero_and_avg_pool_excludes_padding():
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(OPS["none"](3, 3, 1)(x), torch.zeros_like(x))
    ones = torch.ones(1, 1, 3, 3)
    assert torch.equal(OPS["avg_pool_3x3"](1, 1, 1)(ones), ones)  # corners average 4 real pixels, not 9


def test_resnet_block_parameters_and_shape():
    block = ResNetBasicBlock(16, 32, stride=2)
    assert count_parameters(block) == 14_464
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


# ------------------------------------------------------------------------------ cell
def test_none_edges_hold_and_compute_nothing():
    cell = NB201Cell((3, 0, 0, 0, 0, 0), 16, 16).eval()
    assert list(cell.edges) == ["edge01"]
    assert count_parameters(cell) == 16 * 16 * 9 + 32
    # node 3 has only none inputs: the cell outputs zeros
    x = torch.randn(2, 16, 5, 5)
    assert torch.equal(cell(x), torch.zeros_like(x))


def test_cell_output_is_the_sum_over_its_dag():
    arch = (2, 4, 3, 1, 0, 3)  # node1 = c1(x); node2 = pool(x) + c3(n1); node3 = x + c3(n2)
    torch.manual_seed(0)
    cell = NB201Cell(arch, 4, 4).eval()
    e = cell.edges
    x = torch.randn(2, 4, 6, 6)
    n1 = e["edge01"](x)
    n2 = e["edge02"](x) + e["edge12"](n1)
    n3 = x + e["edge23"](n2)
    assert torch.allclose(cell(x), n3, atol=1e-6)


def test_cell_skips_edges_that_cannot_reach_the_output():
    # node 2 feeds nothing (edge 2->3 is none), so its conv edges exist but are not run
    cell = NB201Cell((3, 3, 3, 1, 0, 0), 4, 4)
    assert set(cell.edges) == {"edge01", "edge02", "edge12", "edge03"}
    calls = []
    cell.edges["edge12"].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(1, 4, 3, 3)
    assert torch.equal(cell(x), x)
    assert calls == []


# --------------------------------------------------------------------------- network
@pytest.mark.parametrize(("arch", "expected"), [
    ((0,) * 6, BASE),
    ((1, 4, 1, 4, 1, 4), BASE),
    ((3,) * 6, BASE + 6 * CONV3),
    ((2,) * 6, BASE + 6 * CONV1),
    (BEST, BASE + 5 * CONV3),
])
def test_benchmark_network_parameter_counts(arch, expected):
    assert count_parameters(NB201Network(arch)) == expected


@pytest.mark.parametrize(("in_channels", "size"), [(1, 8), (1, 28), (3, 32), (3, 7)])
def test_forward_shapes(in_channels, size):
    net = NB201Network((3, 1, 2, 4, 0, 3), C=4, N=1, num_classes=7, in_channels=in_channels)
    x = torch.randn(2, in_channels, size, size)
    assert net(x).shape == (2, 7)
    assert net.forward_features(x).shape == (2, 16)


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    net = NB201Network((3, 3, 2, 4, 1, 3), C=4, N=1).eval()
    x = torch.randn(3, 3, 16, 16)
    expected = net(x)
    net = net.to(memory_format=torch.channels_last)
    assert net.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    out = net(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, expected, atol=1e-5)


def test_network_rejects_bad_arguments():
    with pytest.raises(ArchError):
        NB201Network((0, 1, 2))
    with pytest.raises(ConfigError, match=r"invalid value 0 for 'C' of NB201Network; expected an integer in \[1, \d+\]"):
        NB201Network((0,) * 6, C=0)
    with pytest.raises(ConfigError, match="in_channels"):
        NB201Network((0,) * 6, in_channels=True)


# --------------------------------------------------------------------- against data
def test_parameter_counts_match_the_nb201_table(nb201_table):
    table = nb201_table
    params = table.column("params_M")
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    ordinals = set(rng.choice(len(params), size=120, replace=False).tolist())
    ordinals |= {int(np.argmin(params)), int(np.argmax(params))}
    ordinals |= {space.ordinal((op,) * 6) for op in range(5)}
    checked = 0
    for ordinal in sorted(ordinals):
        arch = space.from_ordinal(ordinal)
        if table.index_of(arch) in TABLE_PARAM_OUTLIERS:
            continue
        assert _sig6(count_parameters(NB201Network(arch))) == table.query(arch, "params_M"), space.format(arch)
        checked += 1
    assert checked >= 120


def test_table_param_outliers_are_exactly_the_listed_rows(nb201_table):
    """Every row outside TABLE_PARAM_OUTLIERS equals the network's count; every listed row differs."""
    table = nb201_table
    # a cell's parameters are the sum of its edges', so three networks give every count
    base = count_parameters(NB201Network((0,) * 6))
    per_op = {op: count_parameters(NB201Network((op,) + (0,) * 5)) - base for op in range(5)}
    mismatched = {
        table.index_of(arch)
        for arch in get_space("nb201").all_archs()
        if _sig6(base + sum(per_op[op] for op in arch)) != table.query(arch, "params_M")
    }
    assert mismatched == TABLE_PARAM_OUTLIERS


def test_table_outliers_agree_with_naslib(shared_data, nb201_table):
    """The table rows that disagree with the network are outliers of the table: NASLib agrees with us."""
    table = nb201_table
    scores = json.loads((shared_data / "zero-cost" / "zc_nasbench201.json").read_text())["cifar10"]
    naslib_to_ours = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}  # NASLib orders ops skip, none, conv3, conv1, pool
    outliers = []
    for key, entry in scores.items():
        arch = tuple(naslib_to_ours[o] for o in ast.literal_eval(key))
        if table.index_of(arch) in TABLE_PARAM_OUTLIERS:
            outliers.append((arch, entry["params"]["score"]))
    assert len(outliers) == 10
    for arch, naslib_params in outliers:
        ours = count_parameters(NB201Network(arch))
        assert ours == round(naslib_params * 1e6)
        off = abs(ours - table.query(arch, "params_M") * 1e6)  # the table keeps 6 significant digits
        assert min(abs(off - CONV1), abs(off - CONV3)) <= 5
