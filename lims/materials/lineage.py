"""Lineage: what a material came from and what was made from it (recursive CTEs), and the
lineage graph (nodes and edges) that the CLI's tree and the auditor's picture draw."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, select
from sqlmodel import Session, col

from lims.materials.models import LineageEdge, Material
from lims.units import Quantity, QuantityKind


@dataclass(frozen=True)
class LineageRow:
    material_id: str
    kind: str
    state: str
    depth: int
    remaining: Quantity
    initial: Quantity
    patient_id: int


def _nearest(session: Session, material: Material, *, up: bool) -> list[tuple[Material, int]]:
    edge = LineageEdge.__table__.c  # type: ignore[attr-defined]
    near, far = (edge.child_id, edge.parent_id) if up else (edge.parent_id, edge.child_id)
    seed = select(far.label("id"), literal(1).label("depth")).where(near == material.id)
    tree = seed.cte("tree", recursive=True)
    step = select(far, tree.c.depth + 1).join(tree, near == tree.c.id)
    # UNION, not UNION ALL: a material reached by two pooled paths at the same depth is
    # kept once, so pooling does not multiply the rows the recursion carries.
    tree = tree.union(step)
    nearest = (
        select(tree.c.id, func.min(tree.c.depth).label("depth")).group_by(tree.c.id).subquery()
    )
    rows = session.execute(
        select(Material, nearest.c.depth)
        .join(nearest, col(Material.id) == nearest.c.id)
        .order_by(nearest.c.depth, col(Material.id))
    ).all()
    return [(m, depth) for m, depth in rows]


def _row(m: Material, depth: int) -> LineageRow:
    kind = QuantityKind(m.quantity_kind)
    return LineageRow(
        material_id=m.material_id,
        kind=m.kind,
        state=m.state,
        depth=depth,
        remaining=Quantity.from_canonical(kind, m.remaining_canonical),
        initial=Quantity.from_canonical(kind, m.initial_canonical),
        patient_id=m.patient_id,
    )


def ancestors(session: Session, *, material: Material) -> list[LineageRow]:
    """Every material this one came from, nearest first (recursive CTE)."""
    return [_row(m, d) for m, d in _nearest(session, material, up=True)]


def descendants(session: Session, *, material: Material) -> list[LineageRow]:
    """Every material made from this one, nearest first (recursive CTE)."""
    return [_row(m, d) for m, d in _nearest(session, material, up=False)]


@dataclass(frozen=True)
class LineageGraph:
    root: Material
    # Every material in the graph by its row id; level 0 is the root, ancestors are
    # negative (their distance up), descendants positive.
    nodes: dict[int, Material]
    levels: dict[int, int]
    edges: list[LineageEdge]

    def children(self) -> dict[int, list[int]]:
        """Row ids of each node's children in the graph, lowest id first."""
        found: dict[int, list[int]] = {}
        for e in self.edges:
            found.setdefault(e.parent_id, []).append(e.child_id)
        return {parent: sorted(kids) for parent, kids in found.items()}


def lineage_graph(session: Session, *, material: Material, up: bool = True) -> LineageGraph:
    """The lineage around ``material`` as nodes and edges: what it was made from (unless
    ``up`` is false) and everything made from it."""
    assert material.id is not None
    nodes = {material.id: material}
    levels = {material.id: 0}
    for m, depth in _nearest(session, material, up=True) if up else []:
        nodes[m.id or 0], levels[m.id or 0] = m, -depth
    for m, depth in _nearest(session, material, up=False):
        nodes[m.id or 0], levels[m.id or 0] = m, depth
    ids = list(nodes)
    edges = session.execute(
        select(LineageEdge)
        .where(col(LineageEdge.child_id).in_(ids), col(LineageEdge.parent_id).in_(ids))
        .order_by(col(LineageEdge.id))
    ).scalars()
    return LineageGraph(root=material, nodes=nodes, levels=levels, edges=list(edges))
