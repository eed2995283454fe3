#!/usr/bin/env python3
"""Checks the Grafana dashboard (deploy/observability/grafana/director.json, or the path given):
it parses, panel ids are unique, every panel query reads the datasource variable, and every
panel's PromQL expression names only the metrics Director exports (the list below: OpenTelemetry
semantic conventions as exported to Prometheus, plus Director's own) — a renamed or misspelt
metric shows as an empty panel, never as an error, so it is caught here. Also checks each listed
metric is shown somewhere. Exits 1 naming each problem. Run by .ci/run."""

import json
import re
import sys
from pathlib import Path

HISTOGRAMS = {
    "http_server_request_duration_seconds",
    "rpc_server_call_duration_seconds",
    "rpc_client_call_duration_seconds",
    "db_client_operation_duration_seconds",
}
GAUGES_AND_COUNTERS = {
    "db_client_connection_count",
    "db_client_connection_max",
    "director_jobs_queued",
    "director_jobs_oldest_age_seconds",
    "director_jobs_dead",
    "director_job_attempts_total",
    "director_outbox_lag_seconds",
    "director_open_streams",
    "director_import_collections_total",
}
METRICS = GAUGES_AND_COUNTERS | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_count", "_sum")
}

# PromQL words that are not metric names when they stand alone.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "atan2", "inf", "nan"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta", "deriv",
    "exp", "floor", "group", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "idelta", "increase", "irate", "label_join",
    "label_replace", "last_over_time", "ln", "log10", "log2", "max", "max_over_time", "min",
    "min_over_time", "predict_linear", "quantile", "quantile_over_time", "rate", "resets",
    "round", "scalar", "sort", "sort_desc", "sqrt", "stddev", "stdvar", "sum", "sum_over_time",
    "time", "timestamp", "topk", "bottomk", "vector",
}


def metric_names(expr):
    """The metric names an expression selects (label matchers, ranges, strings and grouping
    label lists removed first)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names, unknown_functions = set(), set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call:
            if word not in FUNCTIONS:
                unknown_functions.add(word)
        elif word.lower() not in KEYWORDS:
            names.add(word)
    return names, unknown_functions


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else
                Path(__file__).parent / "grafana" / "director.json")
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1
    problems, shown, ids = [], set(), set()
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        problems.append("no `datasource` variable")
    for panel in panels_of(dashboard):
        where = f'panel {panel.get("id")} "{panel.get("title")}"'
        if panel.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        for target in [panel] + targets:
            uid = (target.get("datasource") or {}).get("uid")
            if uid != "${datasource}":
                problems.append(f"{where}: datasource {uid!r}, expected the ${{datasource}} variable")
        for target in targets:
            expr = target.get("expr", "")
            if not expr.strip():
                problems.append(f'{where} query {target.get("refId")}: empty expression')
                continue
            names, functions = metric_names(expr)
            for name in sorted(names - METRICS):
                problems.append(f"{where}: unknown metric {name} in: {expr}")
            for function in sorted(functions):
                problems.append(f"{where}: unknown function {function}() in: {expr}")
            if not names:
                problems.append(f"{where}: selects no metric: {expr}")
            shown |= names
    for name in sorted(GAUGES_AND_COUNTERS - shown):
        problems.append(f"metric {name} is on no panel")
    for name in sorted(HISTOGRAMS):
        if not any(n.startswith(name) for n in shown):
            problems.append(f"metric {name} is on no panel")
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
