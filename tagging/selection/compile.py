"""A normalised recipe -> SQL over the registry mirror (``tagging_exposure`` x ``tagging_detector``).

The selection is the mirror's data IDs of the recipe's dimensions, filtered by one predicate per term
(``EXISTS`` for include, ``NOT EXISTS`` for exclude), so PostgreSQL plans it like a hand-written query:
the ``where`` term narrows the exposures on their indexed columns and every other term is an index
probe per exposure (tag rows by (table, exposure, detector), set rows by (version, exposure, detector),
flags by (exposure, is_valid)). A ``where`` expression the mirror cannot answer (a bind, a time, a
region, a dimension it does not copy) is run by the real Butler and joined as a list of data IDs.

Every name that reaches the SQL text is ours (table aliases, model column names, cast names); every
user value is a parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.http import Http404

from core.errors import InputError

from ..models import (
    ButlerRepo,
    DataIdRow,
    DataIdSet,
    DataIdSetVersion,
    Detector,
    Exposure,
    ExposureFlag,
    TagColumn,
    TagRow,
    TagTable,
)
from .condition import ColumnInfo, ConditionError, compile_condition, json_value_sql
from .recipe import STRATIFY_FIELDS, RecipeError
from .terms import Predicate, TermContext, stratifier, term_kind

PREVIEW_ROWS = 20

# Identifiers of a Butler where expression that the mirror answers, by the columns they read.
# Values: (SQL column, type, needs the detector table).
_WHERE_COLUMNS: dict[str, tuple[str, str, bool]] = {
    "instrument": ("e.instrument", "str", False),
    "instrument.name": ("e.instrument", "str", False),
    "exposure": ("e.exposure_id", "int", False),
    "exposure.id": ("e.exposure_id", "int", False),
    "visit": ("e.visit_id", "int", False),
    "visit.id": ("e.visit_id", "int", False),
    "day_obs": ("e.day_obs", "int", False),
    "day_obs.id": ("e.day_obs", "int", False),
    "exposure.day_obs": ("e.day_obs", "int", False),
    "exposure.seq_num": ("e.seq_num", "int", False),
    "exposure.obs_id": ("e.obs_id", "str", False),
    "exposure.physical_filter": ("e.physical_filter", "str", False),
    "physical_filter": ("e.physical_filter", "str", False),
    "physical_filter.name": ("e.physical_filter", "str", False),
    "band": ("e.band", "str", False),
    "band.name": ("e.band", "str", False),
    "exposure.observation_type": ("e.observation_type", "str", False),
    "exposure.observation_reason": ("e.observation_reason", "str", False),
    "exposure.target_name": ("e.target_name", "str", False),
    "exposure.science_program": ("e.science_program", "str", False),
    "exposure.exposure_time": ("e.exposure_time", "float", False),
    "exposure.tracking_ra": ("e.ra", "float", False),
    "exposure.tracking_dec": ("e.dec", "float", False),
    "exposure.zenith_angle": ("e.zenith_angle", "float", False),
    "exposure.azimuth": ("e.azimuth", "float", False),
    "detector": ("d.detector_id", "int", True),
    "detector.id": ("d.detector_id", "int", True),
    "detector.full_name": ("d.full_name", "str", True),
    "detector.raft": ("d.raft", "str", True),
    "detector.purpose": ("d.purpose", "str", True),
}
_KEY_SQL = {
    "instrument": "e.instrument",
    "exposure": "e.exposure_id",
    "visit": "e.visit_id",
    "detector": "d.detector_id",
}


def _fence() -> str:
    """An optimisation fence for PostgreSQL's planner (``OFFSET 0``); SQLite needs none (and wants a LIMIT)."""
    return " OFFSET 0" if connection.vendor == "postgresql" else ""


class _NotInMirror(Exception):
    """The where expression needs the Butler (the message says what the mirror lacks)."""


@dataclass
class CompiledSelection:
    repo: ButlerRepo
    recipe: dict[str, Any]
    keys: list[str]  # output key names: instrument, exposure|visit[, detector]
    from_sql: str
    base_where: list[str]
    base_params: list[Any]
    terms: list[Predicate]
    sample_sql: tuple[str, list[Any]] | None = None  # (stratum expression, params) when sampling

    def _body(self, upto: int | None) -> tuple[str, list[Any]]:
        """``FROM ... WHERE ...`` of the data IDs left after the first ``upto`` terms.

        Every term is a conjunct, so their order does not change the result, only the plan: PostgreSQL
        cannot estimate conditions on JSON values and may probe an exclude term (often the largest,
        per-detector table) for every exposure first. Include terms usually narrow the most, so they run
        first, behind an ``OFFSET 0`` fence, and the exclude terms probe only what is left."""
        terms = self.terms[:upto]
        includes = [t for t in terms if not t.exclude]
        excludes = [t for t in terms if t.exclude]
        inner = " AND ".join([*self.base_where, *(t.sql for t in includes)])
        inner_params = [*self.base_params, *(p for t in includes for p in t.params)]
        if not includes or not excludes:
            where = " AND ".join([inner, *(t.sql for t in excludes)])
            return f"FROM {self.from_sql} WHERE {where}", [*inner_params, *(p for t in excludes for p in t.params)]
        detector = "detector" in self.keys
        ids = "e.id AS eid" + (", d.id AS did" if detector else "")
        rejoin = f"{Exposure._meta.db_table} e ON e.id = inc.eid" + (
            f" JOIN {Detector._meta.db_table} d ON d.id = inc.did" if detector else ""
        )
        return (
            f"FROM (SELECT {ids} FROM {self.from_sql} WHERE {inner}{_fence()}) AS inc JOIN {rejoin} "
            f"WHERE {' AND '.join(t.sql for t in excludes)}",
            [*inner_params, *(p for t in excludes for p in t.params)],
        )

    def funnel_sql(self) -> tuple[str, list[Any]]:
        """One pass for the count left after each term: each data ID gets the number of the first term
        that drops it (or the number of terms if it stays); ``CASE`` stops at the first, so a term is
        only evaluated for what the earlier ones kept. The first term, if it includes, narrows the scan.
        Rows: (stage, count)."""
        terms = self.terms
        first = 1 if terms and not terms[0].exclude else 0
        if first:
            detector = "detector" in self.keys
            ids = "e.id AS eid" + (", d.id AS did" if detector else "")
            rejoin = f"{Exposure._meta.db_table} e ON e.id = inc.eid" + (
                f" JOIN {Detector._meta.db_table} d ON d.id = inc.did" if detector else ""
            )
            where = " AND ".join([*self.base_where, terms[0].sql])
            source = f"(SELECT {ids} FROM {self.from_sql} WHERE {where}{_fence()}) AS inc JOIN {rejoin}"
            params = [*self.base_params, *terms[0].params]
        else:
            source = f"{self.from_sql} WHERE {' AND '.join(self.base_where)}"
            params = list(self.base_params)
        whens = []
        case_params: list[Any] = []
        for i, term in enumerate(terms[first:], start=first):
            whens.append(f"WHEN NOT COALESCE({term.sql}, FALSE) THEN {i}")
            case_params.extend(term.params)
        stage = f"CASE {' '.join(whens)} ELSE {len(terms)} END" if whens else str(len(terms))
        return f"SELECT {stage} AS stage, COUNT(*) FROM {source} GROUP BY 1", [*case_params, *params]

    def key_select(self) -> str:
        return ", ".join(f"{_KEY_SQL[k]} AS {k}" for k in self.keys)

    def filtered_sql(self, upto: int | None = None, *, extra: str = "") -> tuple[str, list[Any]]:
        """The data IDs left after the first ``upto`` terms (all by default), before sampling."""
        body, params = self._body(upto)
        return f"SELECT {self.key_select()}{extra} {body}", params

    def count_sql(self, upto: int | None = None) -> tuple[str, list[Any]]:
        body, params = self._body(upto)
        return f"SELECT COUNT(*) {body}", params

    def result_sql(self) -> tuple[str, list[Any]]:
        """The selection's data IDs (the key columns), sampled if the recipe says so."""
        sample = self.recipe.get("sample")
        if not sample:
            return self.filtered_sql()
        assert self.sample_sql is not None
        stratum_sql, stratum_params = self.sample_sql
        keys = ", ".join(self.keys)
        # md5 is built into PostgreSQL; Django registers it on SQLite. Same text, same sample on both.
        hash_sql = "md5(%s || ':' || " + " || ':' || ".join(f"CAST({_KEY_SQL[k]} AS TEXT)" for k in self.keys) + ")"
        inner, params = self.filtered_sql(extra=f", {hash_sql} AS h, {stratum_sql} AS st")
        # filtered_sql puts the extra columns before FROM, so their parameters come first.
        params = [str(sample["seed"]), *stratum_params, *params]
        bins = (sample.get("stratify") or {}).get("bins")
        if bins:
            inner = f"SELECT {keys}, h, ntile({int(bins)}) OVER (ORDER BY st NULLS LAST) AS st FROM ({inner}) AS b"
        limit = "LEAST(n, %s)" if sample.get("size") else "ROUND(n * %s)"
        params.append(sample.get("size") or sample.get("fraction"))
        # Proportional allocation without rounding drift: within each stratum items are ranked by the
        # seeded hash; globally they are taken in order of their relative rank (rn - 0.5) / ns.
        sql = (
            f"SELECT {keys} FROM ("
            f"SELECT {keys}, n, row_number() OVER (ORDER BY (rn - 0.5) / ns, h) AS g FROM ("
            f"SELECT {keys}, h, row_number() OVER (PARTITION BY st ORDER BY h) AS rn, "
            f"COUNT(*) OVER (PARTITION BY st) AS ns, COUNT(*) OVER () AS n FROM ({inner}) AS s"
            f") AS ranked) AS ordered WHERE g <= {limit}"
        )
        return sql, params


def dataid_set_rows(version: DataIdSetVersion, alias: str) -> tuple[str, str, list[Any]]:
    """THE one place that reads the stored rows of a DataID set version for selections:
    (FROM clause, condition, parameters) whose alias exposes the data-ID columns
    (instrument, exposure, visit, detector, ...). Change only this if the row storage changes."""
    return f"{DataIdRow._meta.db_table} {alias}", f"{alias}.version_id = %s", [version.pk]


def _match(alias: str, their_dims: list[str], keys: list[str], what: str) -> str:
    """Join condition between rows keyed by ``their_dims`` (alias) and the selection's data IDs."""
    parts = [f"{alias}.instrument = e.instrument"] if "instrument" in their_dims else []
    if "exposure" in their_dims:
        parts.append(f"{alias}.exposure = e.exposure_id")
    elif "visit" in their_dims:
        parts.append(f"{alias}.visit = e.visit_id")
    else:
        raise InputError(
            f"{what} is keyed by ({', '.join(their_dims)}); a selection of exposures or visits can use "
            "only tables and sets keyed by exposure or visit.",
            field="terms",
        )
    if "detector" in their_dims and "detector" in keys:
        parts.append(f"{alias}.detector = d.detector_id")
    return " AND ".join(parts)


# --- where -------------------------------------------------------------------------------------------


def _literal(node: tuple, kind: str) -> Any:
    if node[0] == "num":
        if kind == "str":
            raise _NotInMirror("a number compared with a text column")
        value = float(node[1])
        return int(value) if kind == "int" and value.is_integer() else value
    if node[0] == "str":
        if kind != "str":
            raise _NotInMirror("a text compared with a number column")
        return node[1]
    raise _NotInMirror(f"{node[0]} literal")


def _where_sql(node: tuple, keys: list[str], params: list[Any]) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        return f"({_where_sql(node[1], keys, params)} {kind.upper()} {_where_sql(node[2], keys, params)})"
    if kind == "not":
        return f"(NOT {_where_sql(node[1], keys, params)})"
    if kind == "cmp":
        _, op, lhs, rhs = node
        if lhs[0] != "id" and rhs[0] == "id":  # 5 < exposure.seq_num
            lhs, rhs = rhs, lhs
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        column, ctype = _where_column(lhs, keys)
        params.append(_literal(rhs, ctype))
        return f"({column} {'<>' if op == '!=' else op} %s)"
    if kind == "in":
        _, lhs, values, not_in = node
        column, ctype = _where_column(lhs, keys)
        parts = []
        plain = []
        for value in values:
            if value[0] == "range":
                _, start, stop, stride = value
                if ctype != "int":
                    raise _NotInMirror("a range on a non-integer column")
                params.extend([start, stop])
                text = f"({column} BETWEEN %s AND %s"
                if stride and stride != 1:
                    params.extend([start, stride])
                    text += f" AND ({column} - %s) %% %s = 0"
                parts.append(text + ")")
            else:
                plain.append(_literal(value, ctype))
        if plain:
            params.extend(plain)
            parts.append(f"({column} IN ({', '.join(['%s'] * len(plain))}))")
        sql = "(" + " OR ".join(parts) + ")"
        return f"(NOT {sql})" if not_in else sql
    raise _NotInMirror(f"the expression part {node!r}")


def _where_column(node: tuple, keys: list[str]) -> tuple[str, str]:
    if node[0] != "id":
        raise _NotInMirror(f"{node!r} is not a plain column")
    found = _WHERE_COLUMNS.get(node[1].lower())
    if found is None:
        raise _NotInMirror(f"the mirror has no {node[1]!r}")
    column, ctype, needs_detector = found
    if needs_detector and "detector" not in keys:
        raise _NotInMirror(f"{node[1]!r} needs detectors")
    return column, ctype


def _where_predicate(repo: ButlerRepo, term: dict[str, Any], keys: list[str], path: str) -> Predicate:
    from lsst_adapter import where_tree

    expression = term["where"]
    try:
        tree = where_tree(expression)
    except ValueError as exc:
        raise RecipeError(f"{path}.where: {exc}", [{"where": f"{path}.where", "key": "where", "message": str(exc)}])
    params: list[Any] = []
    try:
        if tree is None:
            return Predicate("TRUE", [], path)
        sql = _where_sql(tree, keys, params)
        # As the Butler query does (lsst_adapter.dataids.query_data_ids): no instrument named, the default one.
        if repo.default_instrument and "instrument" not in expression:
            sql = f"({sql} AND e.instrument = %s)"
            params.append(repo.default_instrument)
        return Predicate(sql, params, path)
    except _NotInMirror as reason:
        return _butler_predicate(repo, expression, keys, path, str(reason))


NotInMirror = _NotInMirror  # public name: callers outside this module catch it


def where_mirror_sql(
    expression: str, *, default_instrument: str = "", detectors: bool = False
) -> tuple[str, list[Any]]:
    """A Butler where expression as SQL over the mirror's ``e`` (exposures) and, with ``detectors``, ``d``
    (detectors) aliases, with no Butler fallback: raises ``NotInMirror`` (saying what the mirror lacks) or
    ``ValueError`` (the expression does not parse). ``("TRUE", [])`` for an empty expression. As
    :func:`_where_predicate`: no instrument named, the default one."""
    from lsst_adapter import where_tree

    tree = where_tree(expression)
    if tree is None:
        return "TRUE", []
    params: list[Any] = []
    sql = _where_sql(tree, ["instrument", "exposure", *(["detector"] if detectors else [])], params)
    if default_instrument and "instrument" not in expression:
        sql = f"({sql} AND e.instrument = %s)"
        params.append(default_instrument)
    return sql, params


def _butler_predicate(repo: ButlerRepo, expression: str, keys: list[str], path: str, reason: str) -> Predicate:
    """The where expression run by the real Butler, joined as a list of data IDs (slower, always right)."""
    from lsst_adapter.dataids import query_data_ids
    from lsst_adapter.registry import RepoError

    dims = [k for k in keys if k != "instrument"]
    try:
        found = list(
            query_data_ids(repo.config_uri, dims, expression, default_instrument=repo.default_instrument or None)
        )
    except (RepoError, ValueError) as exc:
        raise RecipeError(
            f"{path}.where: {exc}", [{"where": f"{path}.where", "key": "where", "message": str(exc)}]
        ) from exc
    columns = ["instrument", *dims]
    tuple_sql = ", ".join(_KEY_SQL[c] for c in columns)
    if connection.vendor == "postgresql":
        params: list[Any] = [[row[c] for row in found] for c in columns]
        casts = ["text[]" if c == "instrument" else "bigint[]" for c in columns]
        unnest = ", ".join(f"%s::{cast}" for cast in casts)
        sql = f"(({tuple_sql}) IN (SELECT * FROM unnest({unnest})))"
    else:  # one JSON array of [instrument, id, ...] rows
        items = ", ".join(f"json_extract(j.value, '$[{i}]')" for i in range(len(columns)))
        params = [json.dumps([[row[c] for c in columns] for row in found])]
        sql = f"(({tuple_sql}) IN (SELECT {items} FROM json_each(%s) AS j))"
    return Predicate(
        sql,
        params,
        path,
        engine="butler",
        resolved={"butler_reason": reason, "butler_count": len(found)},
    )


# --- tag tables, sets, flags, bad data ----------------------------------------------------------------


def _tag_table(user, repo: ButlerRepo, name: str, path: str) -> TagTable:
    table = TagTable.objects.restrict(user, "view").filter(repo=repo, name=name).first()
    if table is None:
        raise Http404(f"{path}: no tag table named {name!r} in {repo.label} that you may see.")
    return table


def tag_columns(table: TagTable) -> list[ColumnInfo]:
    """Every column of the table, retired ones too (their values are kept and may be selected on)."""
    return [
        ColumnInfo(c.key, c.name, c.type, tuple(c.enum_values or ()))
        for c in TagColumn.objects.filter(table=table).order_by("position", "pk")
    ]


def _tag_predicate(user, repo: ButlerRepo, term: dict[str, Any], keys: list[str], path: str) -> Predicate:
    table = _tag_table(user, repo, term["tag_table"], path)
    match = _match("r", list(table.key_dimensions), keys, f"{path}: tag table {table.name!r}")
    sql = f"r.table_id = %s AND {match}"
    params: list[Any] = [table.pk]
    resolved = {"tag_table_id": table.pk, "tag_table": table.name}
    if term.get("condition"):
        try:
            compiled = compile_condition(term["condition"], tag_columns(table))
        except ConditionError as exc:
            message = f"{path}.condition: {exc.message}"
            raise RecipeError(message, [{"where": f"{path}.condition", "key": "condition", "message": message}])
        sql += f" AND {compiled.sql}"
        params += compiled.params
        resolved["columns_used"] = compiled.columns_used
    return Predicate(f"EXISTS (SELECT 1 FROM {TagRow._meta.db_table} r WHERE {sql})", params, path, resolved=resolved)


def _set_version(user, repo: ButlerRepo, name: str, number: int | None, path: str) -> DataIdSetVersion:
    dataid_set = DataIdSet.objects.restrict(user, "view").filter(repo=repo, name=name).first()
    if dataid_set is None:
        raise Http404(f"{path}: no DataID set named {name!r} in {repo.label} that you may see.")
    versions = dataid_set.versions.order_by("-number")
    version = versions.first() if number is None else versions.filter(number=number).first()
    if version is None:
        raise Http404(f"{path}: DataID set {name!r} has no version {number}.")
    return version


def _set_predicate(user, repo: ButlerRepo, term: dict[str, Any], keys: list[str], path: str) -> Predicate:
    version = _set_version(user, repo, term["dataid_set"], term.get("version"), path)
    from_sql, where_sql, params = dataid_set_rows(version, "s")
    match = _match("s", list(version.dimensions), keys, f"{path}: DataID set {term['dataid_set']!r}")
    return Predicate(
        f"EXISTS (SELECT 1 FROM {from_sql} WHERE {where_sql} AND {match})",
        params,
        path,
        resolved={"dataid_set_id": version.dataid_set_id, "version": version.number, "version_id": version.pk},
    )


def _flag_predicate(term: dict[str, Any], path: str) -> Predicate:
    flags = term["flags"]
    placeholders = ", ".join(["%s"] * len(flags))
    return Predicate(
        f"EXISTS (SELECT 1 FROM {ExposureFlag._meta.db_table} f WHERE f.exposure = e.exposure_id "
        f"AND f.instrument = e.instrument AND f.is_valid AND f.exposure_flag IN ({placeholders}))",
        list(flags),
        path,
    )


def bad_data_predicate(term: dict[str, Any], keys: list[str], path: str) -> Predicate:
    """Data IDs with a bad-data record (tagging.BadDataRecord) in one of the term's statuses.

    A record names an exposure, or a visit (one-to-one with its exposure); a record without a detector
    covers every detector of it, one with a detector only that detector when the selection has detectors
    (and the whole exposure when it does not)."""
    from tagging.models import BadDataRecord

    match = [
        "b.repo_id = e.repo_id",
        "(b.exposure = e.exposure_id OR (b.exposure IS NULL AND b.visit IS NOT NULL AND b.visit = e.visit_id))",
    ]
    if "detector" in keys:
        match.append("(b.detector IS NULL OR b.detector = d.detector_id)")
    statuses = term["bad_data"]
    return Predicate(
        f"EXISTS (SELECT 1 FROM {BadDataRecord._meta.db_table} b WHERE {' AND '.join(match)} "
        f"AND b.status IN ({', '.join(['%s'] * len(statuses))}))",
        list(statuses),
        path,
    )


# --- sampling ----------------------------------------------------------------------------------------


def _stratum_sql(user, repo: ButlerRepo, stratify: dict[str, Any] | None, keys: list[str]) -> tuple[str, list[Any]]:
    if not stratify:
        return "0", []
    if "field" in stratify:
        column = STRATIFY_FIELDS[stratify["field"]]
        if column.startswith("d.") and "detector" not in keys:
            raise RecipeError(
                "sample.stratify.field: 'detector' needs a selection of detectors.",
                [{"where": "sample.stratify.field", "key": "field", "message": "needs detectors"}],
            )
        return column, []
    # Another app's value (a metric: registered by the metrics app), never imported from here.
    provided = [k for k in stratify if k not in ("field", "tag_table", "column", "bins")]
    if provided:
        key = provided[0]
        provide = stratifier(key)
        if provide is None:
            message = f"sample.stratify.{key}: a sample cannot follow a {key} here (nothing provides it)."
            raise RecipeError(message, [{"where": f"sample.stratify.{key}", "key": key, "message": message}])
        return provide(user, repo, stratify, keys)
    table = _tag_table(user, repo, stratify["tag_table"], "sample.stratify")
    info = next((c for c in tag_columns(table) if c.name == stratify["column"]), None)
    if info is None:
        message = f"sample.stratify.column: no column named {stratify['column']!r} in tag table {table.name!r}."
        raise RecipeError(message, [{"where": "sample.stratify.column", "key": "column", "message": message}])
    value = json_value_sql('r."values"', info.type)
    match = _match("r", list(table.key_dimensions), keys, f"sample.stratify: tag table {table.name!r}")
    return (
        f"(SELECT {value} FROM {TagRow._meta.db_table} r WHERE r.table_id = %s AND {match} LIMIT 1)",
        [info.key, table.pk],
    )


# --- the whole recipe --------------------------------------------------------------------------------


def compile_recipe(recipe: dict[str, Any], *, user) -> CompiledSelection:
    """SQL for a normalised recipe (see ``recipe.normalize_recipe``) as ``user`` sees the data.
    Raises ``Http404`` naming the term for a table or set the user may not see."""
    repo = ButlerRepo.objects.filter(label=recipe["repo"]).first()
    if repo is None:
        raise RecipeError(
            f"repo: unknown Butler repo {recipe['repo']!r}.",
            [{"where": "repo", "key": "repo", "message": f"repo: unknown Butler repo {recipe['repo']!r}."}],
        )
    dims = list(recipe["dimensions"])
    keys = ["instrument", *dims]
    from_sql = f"{Exposure._meta.db_table} e"
    base_where = ["e.repo_id = %s"]
    base_params: list[Any] = [repo.pk]
    if "detector" in dims:
        from_sql += f" JOIN {Detector._meta.db_table} d ON d.repo_id = e.repo_id AND d.instrument = e.instrument"
    if "visit" in dims:
        base_where.append("e.visit_id IS NOT NULL")
    terms: list[Predicate] = []
    for i, term in enumerate(recipe["terms"]):
        path = f"terms[{i}]"
        kind = term_kind(term["kind"])
        if kind is None:
            message = f"{path}: terms of kind {term['kind']!r} cannot be selected here."
            raise RecipeError(message, [{"where": path, "key": "kind", "message": message}])
        predicate = kind.compile(term, TermContext(user=user, repo=repo, keys=keys, path=path))
        if term["mode"] == "exclude":
            predicate.exclude = True
            # An unknown value (SQL NULL) does not match, so it is not excluded either.
            predicate.sql = (
                f"NOT {predicate.sql}"
                if predicate.sql.startswith("EXISTS")
                else f"NOT COALESCE({predicate.sql}, FALSE)"
            )
        terms.append(predicate)
    compiled = CompiledSelection(repo, recipe, keys, from_sql, base_where, base_params, terms)
    sample = recipe.get("sample")
    if sample:
        compiled.sample_sql = _stratum_sql(user, repo, sample.get("stratify"), keys)
    return compiled
