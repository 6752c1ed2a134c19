"""Tables as text: the one rendering prompts show and the verifier checks table answers against.

Tables are not clauses; an answer about a table row cites a clause of the table's section. The
verifier's evidence for a clause therefore carries the tables of its section rendered here, and
dataset prompts show the same rendering, so a row quoted from a prompt is found in the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence


def render_table(caption: str | None, header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """``表：caption`` then one line per row, ``列：值；列：值`` when the header fits the row.

    Example::

        表：费用审批权限
        金额区间：5000元以下；审批人：部门负责人
    """
    lines = [f"表：{caption}" if caption else "表："]
    for row in rows:
        if header and len(header) == len(row):
            lines.append("；".join(f"{h}：{v}" for h, v in zip(header, row, strict=True) if v))
        else:
            lines.append("；".join(v for v in row if v))
    return "\n".join(lines)


__all__ = ["render_table"]
