"""The one lineage graph the CLI's tree and the auditor's picture are drawn from."""

from sqlalchemy import Engine

from lims.db import read_session
from lims.materials.lineage import ancestors, descendants, lineage_graph
from lims.materials.service import get_material
from tests.builders import Lab
from tests.conftest import World


def test_lineage_graph_levels_and_edges(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    cm = lab.cm_batch("61 mL")
    lot = lab.lot(cm=cm)
    with read_session(engine) as s:
        root = get_material(s, cm)
        graph = lineage_graph(s, material=root)
        up, down = ancestors(s, material=root), descendants(s, material=root)
        below = lineage_graph(s, material=root, up=False)
    by_mid = {m.material_id: i for i, m in graph.nodes.items()}
    assert graph.levels[by_mid[cm]] == 0 and graph.levels[by_mid[lot]] == 1
    assert {graph.nodes[i].material_id for i, lv in graph.levels.items() if lv < 0} == {
        r.material_id for r in up
    }
    assert {r.material_id: -r.depth for r in up} == {
        graph.nodes[i].material_id: lv for i, lv in graph.levels.items() if lv < 0
    }
    assert {r.material_id for r in down} == {lot}
    # Every edge joins two nodes of the graph, and the nodes form one chain to the root.
    assert all(e.parent_id in graph.nodes and e.child_id in graph.nodes for e in graph.edges)
    assert len(graph.edges) == len(graph.nodes) - 1
    assert graph.children()[by_mid[cm]] == [by_mid[lot]]
    # Without ancestors: the root and what was made from it.
    assert {m.material_id for m in below.nodes.values()} == {cm, lot}
    assert [(e.parent_id, e.child_id) for e in below.edges] == [(by_mid[cm], by_mid[lot])]
