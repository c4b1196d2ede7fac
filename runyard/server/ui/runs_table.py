"""The runs table: its URL state, its columns and rows, and the page that renders it.

The whole view lives in the URL (``filter``, ``order_by``, ``cols``, ``max_results``,
``page_token``, ``view``, ``sel``), so every state is a link: sort headers and pager links are
real links that work without JavaScript, and ``runs_table.js`` fetches the same URLs with
``X-Fragment: 1`` to swap only the results (``experiments/_results.html``, the template the full
page includes).

A render reads the store once for the page of runs (``search_runs`` with the page size) plus the
experiments' headers: no per-run queries, no key listing, no count over all runs. The total is
shown exactly only on the last page ("1–37 of 37"); otherwise as "1–100 of 100+".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from runyard.entities import Experiment, PagedList, Run, ViewType
from runyard.errors import InvalidParameterValue
from runyard.server.context import ServerContext
from runyard.server.ui.markdown import render_markdown
from runyard.server.ui.render import format_value, prefix_of, render
from runyard.store.search.grammar import OrderBy, parse_run_order_by
from runyard.store.search.paging import decode_page_token, encode_page_token

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "PAGE_SIZES",
    "VIEWS",
    "RunsQuery",
    "TableColumn",
    "cell_value",
    "column_expression",
    "default_columns",
    "nest_runs",
    "quote_key",
    "runs_page",
    "source_of",
]

PAGE_SIZES = (50, 100, 500, 1000)
DEFAULT_PAGE_SIZE = 100
VIEWS: dict[str, int] = {
    "active": ViewType.ACTIVE_ONLY,
    "deleted": ViewType.DELETED_ONLY,
    "all": ViewType.ALL,
}
#: At most this many metric keys and this many param keys are shown when ``cols`` is absent.
DEFAULT_KEYS_PER_KIND = 8
PARENT_TAG = "mlflow.parentRunId"
SOURCE_TAG = "mlflow.source.name"
COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"
#: ``cols`` entries: the search grammar's plural prefix, then the key as logged.
_KINDS = {"metrics": "metric", "params": "param", "tags": "tag"}
#: Values up to this long are shown whole (cells truncate longer ones, with a title).
_SHORT_VALUE = 24
_PLAIN_KEY = re.compile(r"[\w$]+(\.[\w$]+)*")


def quote_key(key: str) -> str:
    """A key as the search grammar reads it: bare when it is a dotted word, else backticked."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    return "`" + key.replace("`", "``") + "`"


def column_expression(column_id: str) -> str:
    """``metrics.my key`` (a ``cols`` entry) → ``metrics.`my key``` (search grammar)."""
    kind, _, key = column_id.partition(".")
    return f"{kind}.{quote_key(key)}"


def parse_cols(raw: str | None) -> tuple[str, ...] | None:
    """``cols`` from the URL: None when absent (default columns), else the valid entries."""
    if raw is None:
        return None
    out = []
    for item in raw.split(","):
        kind, dot, key = item.strip().partition(".")
        if dot and key and kind in _KINDS:
            out.append(f"{kind}.{key}")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class RunsQuery:
    """The runs table's state as the URL holds it.

    Attributes:
        path: The page's path (``/experiments/1`` or ``/runs``).
        experiment_ids: The experiments shown.
        ids_in_query: Whether ``experiment_ids`` travel in the query (``/runs``) or in the path.
    """

    path: str
    experiment_ids: tuple[str, ...]
    ids_in_query: bool = False
    filter: str = ""
    order_by: str = ""
    cols: tuple[str, ...] | None = None
    max_results: int = DEFAULT_PAGE_SIZE
    page_token: str = ""
    view: str = "active"
    sel: tuple[str, ...] = ()

    @classmethod
    def from_request(
        cls, request: Request, path: str, experiment_ids: Sequence[str], ids_in_query: bool
    ) -> RunsQuery:
        """Read the state from the query string (unknown or malformed values → defaults)."""
        q = request.query_params
        try:
            size = int(q.get("max_results") or DEFAULT_PAGE_SIZE)
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        view = q.get("view") or "active"
        sel = tuple(dict.fromkeys(s for s in (q.get("sel") or "").split(",") if s.strip()))
        return cls(
            path=path,
            experiment_ids=tuple(experiment_ids),
            ids_in_query=ids_in_query,
            filter=(q.get("filter") or "").strip(),
            order_by=(q.get("order_by") or "").strip(),
            cols=parse_cols(q.get("cols")),
            max_results=size if 0 < size <= PAGE_SIZES[-1] else DEFAULT_PAGE_SIZE,
            page_token=q.get("page_token") or "",
            view=view if view in VIEWS else "active",
            sel=sel,
        )

    @property
    def view_type(self) -> int:
        """The view as a :class:`ViewType` number."""
        return VIEWS[self.view]

    def pairs(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string as (name, value) pairs, with ``changes`` applied; defaults and
        empty values left out (an explicit empty ``cols`` is kept: it means "no columns")."""
        state = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = []
        if state.ids_in_query:
            out += [("experiment_ids", e) for e in state.experiment_ids]
        if state.filter:
            out.append(("filter", state.filter))
        if state.order_by:
            out.append(("order_by", state.order_by))
        if state.cols is not None:
            out.append(("cols", ",".join(state.cols)))
        if state.max_results != DEFAULT_PAGE_SIZE:
            out.append(("max_results", str(state.max_results)))
        if state.page_token:
            out.append(("page_token", state.page_token))
        if state.view != "active":
            out.append(("view", state.view))
        if state.sel:
            out.append(("sel", ",".join(state.sel)))
        return out

    def href(self, prefix: str, path: str | None = None, **changes: Any) -> str:
        """A link to this view (or ``path``) with ``changes`` applied."""
        query = urlencode(self.pairs(**changes))
        return prefix + (path or self.path) + ("?" + query if query else "")


@dataclass(frozen=True)
class TableColumn:
    """One column of the runs table.

    Attributes:
        id: ``attributes.start_time``, ``metrics.loss``, ``params.lr``, ``tags.stage``.
        label: The header text.
        kind: ``attribute``, ``metric``, ``param`` or ``tag`` (styles and the CSV header).
        sort_expression: What ``order_by`` sorts this column by; None: not sortable.
        numeric: Right-aligned cells.
    """

    id: str
    label: str
    kind: str
    sort_expression: str | None
    numeric: bool = False
    #: Filled per render: ``ascending``/``descending`` when the table is sorted by it.
    sort: str | None = None
    #: Filled per render: the link that sorts by this column (toggling the direction).
    href: str | None = None


FIXED_COLUMNS: tuple[TableColumn, ...] = (
    TableColumn("attributes.run_name", "Run name", "attribute", "attributes.run_name"),
    TableColumn("attributes.status", "Status", "attribute", "attributes.status"),
    TableColumn("attributes.start_time", "Created", "attribute", "attributes.start_time"),
    TableColumn("duration", "Duration", "attribute", None, numeric=True),
    TableColumn("attributes.user_id", "User", "attribute", "attributes.user_id"),
    TableColumn(
        "tags." + SOURCE_TAG, "Source", "attribute", column_expression("tags." + SOURCE_TAG)
    ),
)


def extra_column(column_id: str) -> TableColumn:
    """The column of a ``cols`` entry (``metrics.loss`` …)."""
    plural, _, key = column_id.partition(".")
    kind = _KINDS[plural]
    return TableColumn(column_id, key, kind, column_expression(column_id), numeric=kind == "metric")


def default_columns(runs: Iterable[Run], per_kind: int | None = DEFAULT_KEYS_PER_KIND) -> list[str]:
    """The metric and param keys present in ``runs`` (sorted, at most ``per_kind`` of each)."""
    metrics: set[str] = set()
    params: set[str] = set()
    for run in runs:
        metrics.update(run.data.metrics)
        params.update(run.data.params)
    return [
        *(f"metrics.{k}" for k in sorted(metrics)[:per_kind]),
        *(f"params.{k}" for k in sorted(params)[:per_kind]),
    ]


def cell_value(run: Run, column_id: str) -> Any:
    """The raw value of a ``cols`` column for a run (None when the run lacks the key)."""
    plural, _, key = column_id.partition(".")
    data: dict[str, Mapping[str, Any]] = {
        "metrics": run.data.metrics,
        "params": run.data.params,
        "tags": run.data.tags,
    }
    return data.get(plural, {}).get(key)


def source_of(run: Run) -> tuple[str, str]:
    """The run's source as shown: (basename of ``mlflow.source.name``, short git commit)."""
    name = run.data.tags.get(SOURCE_TAG, "")
    base = re.split(r"[\\/]", name.rstrip("/\\"))[-1] if name else ""
    return base, run.data.tags.get(COMMIT_TAG, "")[:7]


@dataclass
class RunRow:
    """A rendered row: the run, where it sits in the nesting, and its chosen-column cells."""

    run: Run
    depth: int = 0
    parent_id: str | None = None
    child_count: int = 0
    selected: bool = False
    #: One (text, title, numeric) per chosen column.
    cells: list[tuple[str, str, bool]] = field(default_factory=list)
    source: str = ""
    commit: str = ""


def nest_runs(runs: Sequence[Run]) -> list[RunRow]:
    """The page's runs with each child right under its parent when the parent is on the page.

    Top-level runs keep the search order; children keep it among their siblings. Runs whose
    parent is elsewhere (or that form a cycle) stay top-level.
    """
    by_id = {r.info.run_id: r for r in runs}
    parent_of: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for run in runs:
        parent = run.data.tags.get(PARENT_TAG)
        if parent and parent in by_id and parent != run.info.run_id:
            parent_of[run.info.run_id] = parent
            children.setdefault(parent, []).append(run.info.run_id)
    out: list[RunRow] = []
    placed: set[str] = set()

    def place(root: str) -> None:
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            run_id, depth = stack.pop()
            if run_id in placed:
                continue
            placed.add(run_id)
            kids = [k for k in children.get(run_id, []) if k not in placed]
            parent = parent_of.get(run_id) if depth else None
            out.append(RunRow(by_id[run_id], depth, parent, len(kids)))
            stack.extend((kid, depth + 1) for kid in reversed(kids))

    for run in runs:
        if run.info.run_id not in parent_of:
            place(run.info.run_id)
    for run in runs:  # members of a parent cycle: no root reaches them
        if run.info.run_id not in placed:
            place(run.info.run_id)
    return out


def _current_sort(order_by: str) -> OrderBy | None:
    if not order_by:
        return OrderBy("attribute", "start_time", ascending=False)
    try:
        parsed = parse_run_order_by([order_by])
    except InvalidParameterValue:
        return None
    return parsed[0] if parsed else None


def _sort_identity(expression: str) -> tuple[str, str] | None:
    try:
        parsed = parse_run_order_by([expression])
    except InvalidParameterValue:
        return None
    return (parsed[0].entity, parsed[0].key) if parsed else None


def _with_sort_links(
    columns: Sequence[TableColumn], query: RunsQuery, prefix: str
) -> list[TableColumn]:
    current = _current_sort(query.order_by)
    out = []
    for column in columns:
        if column.sort_expression is None:
            out.append(column)
            continue
        identity = _sort_identity(column.sort_expression)
        sort = None
        ascending_next = True
        if current is not None and identity == (current.entity, current.key):
            sort = "ascending" if current.ascending else "descending"
            ascending_next = not current.ascending
        order = f"{column.sort_expression} {'ASC' if ascending_next else 'DESC'}"
        out.append(
            replace(column, sort=sort, href=query.href(prefix, order_by=order, page_token=""))
        )
    return out


def _count_text(offset: int, shown: int, more: bool) -> str:
    if shown == 0:
        return "No runs" if offset == 0 else f"No runs after the first {offset}"
    first, last = offset + 1, offset + shown
    noun = "run" if last == 1 else "runs"
    if more:
        return f"Showing {noun} {first}–{last} of {last}+"
    if offset == 0:
        return f"{last} {noun}"
    return f"Showing {noun} {first}–{last} of {last}"


def _page_links(query: RunsQuery, prefix: str, token: str | None) -> dict[str, str | None]:
    try:
        offset = decode_page_token(query.page_token or None)
    except InvalidParameterValue:
        offset = 0
    previous = None
    if offset > 0:
        back = max(0, offset - query.max_results)
        previous = query.href(prefix, page_token=encode_page_token(back) if back else "")
    return {
        "first_href": query.href(prefix, page_token="") if offset > 0 else None,
        "prev_href": previous,
        "next_href": query.href(prefix, page_token=token) if token else None,
    }


def _csv_href(query: RunsQuery, prefix: str, cols: Sequence[str]) -> str:
    path = f"{query.path}/runs.csv" if not query.ids_in_query else "/runs.csv"
    return query.href(
        prefix, path, cols=tuple(cols), page_token="", sel=(), max_results=DEFAULT_PAGE_SIZE
    )


def selection_links(prefix: str, selected: Sequence[str]) -> dict[str, str]:
    """The Compare and Chart links for the selected runs."""
    runs = ",".join(selected)
    return {
        "compare_href": f"{prefix}/compare?runs={runs}",
        "chart_href": f"{prefix}/metrics?runs={runs}",
    }


def _rows(page: Sequence[Run], cols: Sequence[str], selected: set[str]) -> list[RunRow]:
    rows = nest_runs(page)
    for row in rows:
        row.selected = row.run.info.run_id in selected
        row.source, row.commit = source_of(row.run)
        for col in cols:
            value = cell_value(row.run, col)
            text = format_value(value)
            # The title carries the full value (cells are truncated by CSS).
            # A title only where the cell may hide something: full precision, long text.
            title = repr(value) if isinstance(value, float) else text
            if title == text and len(text) <= _SHORT_VALUE:
                title = ""
            row.cells.append((text, title, col.startswith("metrics.")))
    return rows


def _experiment_context(experiments: Sequence[Experiment]) -> dict[str, Any]:
    if len(experiments) == 1:
        exp = experiments[0]
        note = exp.tags.get(NOTE_TAG, "")
        return {
            "title": exp.name,
            "experiment": exp,
            "description": render_markdown(note) if note.strip() else None,
            "tags": {k: v for k, v in sorted(exp.tags.items()) if not k.startswith("mlflow.")},
        }
    return {"title": f"{len(experiments)} experiments", "experiment": None}


def runs_page(
    ctx: ServerContext,
    request: Request,
    experiment_ids: Sequence[str],
    ids_in_query: bool,
) -> Response:
    """The runs table of ``experiment_ids`` (the full page, or with ``X-Fragment: 1`` only the
    results part). An invalid filter or order renders inline with MLflow's message (400)."""
    store = ctx.tracking()
    prefix = prefix_of(request)
    path = "/runs" if ids_in_query else f"/experiments/{experiment_ids[0]}"
    query = RunsQuery.from_request(request, path, experiment_ids, ids_in_query)
    fragment = request.headers.get("x-fragment") == "1"
    # Unknown experiments are a 404 page (search_runs alone would just find no runs).
    experiments = [store.get_experiment(e) for e in experiment_ids]
    error = None
    try:
        page = store.search_runs(
            list(query.experiment_ids),
            query.filter or None,
            query.view_type,
            query.max_results,
            [query.order_by] if query.order_by else None,
            query.page_token or None,
        )
    except InvalidParameterValue as exc:
        error = exc.message
        page = PagedList([], None)
    cols = list(query.cols) if query.cols is not None else default_columns(page)
    columns = _with_sort_links([*FIXED_COLUMNS, *map(extra_column, cols)], query, prefix)
    try:
        offset = decode_page_token(query.page_token or None)
    except InvalidParameterValue:
        offset = 0
    context: dict[str, Any] = {
        "section": "experiments",
        "query": query,
        "experiments": experiments,
        "error": error,
        "columns": columns,
        "col_ids": cols,
        "rows": _rows(page, cols, set(query.sel)),
        "count_text": _count_text(offset, len(page), page.token is not None),
        "csv_href": _csv_href(query, prefix, cols),
        "clear_filter_href": query.href(prefix, filter="", page_token=""),
        "deleted_view_href": query.href(prefix, view="deleted", page_token=""),
        "page_sizes": PAGE_SIZES,
        **_page_links(query, prefix, page.token),
        **selection_links(prefix, query.sel),
    }
    if not fragment:
        context.update(_experiment_context(experiments))
    template = "experiments/_results.html" if fragment else "experiments/runs.html"
    response = render(request, template, status=400 if error else 200, **context)
    # The page and its fragment share a URL: caches must keep them apart.
    response.headers["Vary"] = "X-Fragment"
    if fragment:
        response.headers["Cache-Control"] = "no-store"
    return response
