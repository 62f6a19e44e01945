#!/usr/bin/python3
"""ops_check: a gbxd scrape, the sample Grafana dashboard and the alert rules agree.

    ops_check.py METRICS_TEXT_FILE DASHBOARD_JSON ALERTS_YML

1. METRICS_TEXT_FILE is parsed strictly as the Prometheus text exposition
   format 0.0.4 (what GET /metrics serves): HELP and TYPE lines, sample lines
   and their labels, every family typed and in one group, no duplicate series,
   histograms whose buckets are cumulative and end in le="+Inf" equal to _count.
2. Every metric name in the dashboard's PromQL (panel targets, template
   variables, annotations) and in the alert expressions must be exported by
   that scrape.
   A family declared by a TYPE line counts even with no samples yet (a labelled
   counter before its first event); a histogram is used through its _bucket,
   _sum and _count series. `up` and Prometheus's other per-target series are
   allowed.
3. The dashboard and the alert file have the expected structure: schema
   version 36 or later, the `datasource` and `node` variables, every panel on
   ${datasource}; groups of rules with alert, expr, for, labels.severity (page
   or ticket) and the annotations summary, description and runbook, whose
   `FILE#anchor` must name a heading of FILE when FILE is found beside the
   alert file or in a folder above it.

Exit 0 when everything holds; 1 with one line per problem; 2 on bad usage or
unreadable files; 77 (skipped) when python3-yaml is missing. Standard library
and python3-yaml only.
"""

import json
import math
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None

# ---------------------------------------------------------------------------
# 1. The text exposition format
# ---------------------------------------------------------------------------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN")
TIMESTAMP = re.compile(r"-?[0-9]+")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


class Scrape:
    """What one parse of a scrape found."""

    def __init__(self):
        self.types = {}  # family name -> type
        self.helps = set()  # family names with a HELP line
        self.samples = []  # (line number, sample name, family, labels dict, value)
        self.errors = []

    def exported(self):
        """Every series name the scrape exports (or declares), mapped to its family."""
        names = {}
        for fam, typ in self.types.items():
            for suffix in SUFFIXES.get(typ, ("",)):
                names[fam + suffix] = fam
        return names


def _unescape(text, allowed, where, errors):
    """Text with the escapes of ALLOWED ({char: replacement}) resolved; None on a bad one."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                errors.append(f"{where}: invalid escape sequence {text[i:i + 2]!r}")
                return None
            out.append(allowed[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(text, pos, where, errors):
    """Parses '{...}' at TEXT[POS]; returns (labels as a list of pairs, position after '}')."""
    assert text[pos] == "{"
    pos += 1
    pairs = []
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == "}":
            return pairs, pos + 1
        m = LABEL_NAME.match(text, pos)
        if not m:
            errors.append(f"{where}: expected a label name at column {pos + 1}")
            return None, pos
        name = m.group(0)
        pos = m.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos] != "=":
            errors.append(f"{where}: expected '=' after label {name}")
            return None, pos
        pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos] != '"':
            errors.append(f"{where}: the value of label {name} is not in double quotes")
            return None, pos
        pos += 1
        start = pos
        while pos < len(text) and text[pos] != '"':
            pos += 2 if text[pos] == "\\" else 1
        if pos >= len(text):
            errors.append(f"{where}: the value of label {name} is not terminated")
            return None, pos
        value = _unescape(text[start:pos], {"\\": "\\", '"': '"', "n": "\n"},
                          f"{where}: label {name}", errors)
        if value is None:
            return None, pos
        pairs.append((name, value))
        pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "}":
            continue
        else:
            errors.append(f"{where}: expected ',' or '}}' after the value of label {name}")
            return None, pos


def _family_of(name, types):
    """The family a sample name belongs to, or None when no TYPE line declares it."""
    candidates = []
    if name in types and types[name] != "histogram":
        candidates.append(name)
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and suffix in SUFFIXES.get(types.get(base), ()):
            candidates.append(base)
    if len(candidates) > 1:
        return "conflict:" + " and ".join(candidates)
    return candidates[0] if candidates else None


def parse_exposition(text):
    """Parses a scrape strictly; the problems found are in .errors."""
    s = Scrape()
    err = s.errors
    if text and not text.endswith("\n"):
        err.append("the last line does not end with a line feed")
    if "\r" in text:
        err.append("carriage returns in the text: lines end with a line feed alone")
    finished = set()  # families whose group has ended
    current = None  # the family of the group being read
    sampled = set()  # families with a sample seen
    series = {}  # (name, frozen labels) -> line number

    def enter(fam, where):
        nonlocal current
        if fam == current:
            return
        if fam in finished:
            err.append(f"{where}: lines of family {fam} are not in one group")
        if current is not None:
            finished.add(current)
        current = fam

    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    for n, line in enumerate(lines, 1):
        where = f"line {n}"
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line[1:].lstrip(" \t").split(None, 2)
            if not parts or parts[0] not in ("HELP", "TYPE"):
                continue  # a comment
            if len(parts) < 2 or not METRIC_NAME.fullmatch(parts[1]):
                err.append(f"{where}: {parts[0]} line without a valid metric name")
                continue
            fam = parts[1]
            rest = parts[2] if len(parts) > 2 else ""
            if parts[0] == "HELP":
                enter(fam, where)
                if fam in s.helps:
                    err.append(f"{where}: a second HELP line for {fam}")
                s.helps.add(fam)
                _unescape(rest, {"\\": "\\", "n": "\n"}, f"{where}: HELP {fam}", err)
            else:
                enter(fam, where)
                typ = rest.strip()
                if typ not in TYPES:
                    err.append(f"{where}: TYPE {fam} has unknown type {typ!r}")
                    continue
                if fam in s.types:
                    err.append(f"{where}: a second TYPE line for {fam}")
                    continue
                if fam in sampled:
                    err.append(f"{where}: TYPE {fam} comes after samples of {fam}")
                s.types[fam] = typ
            continue

        m = METRIC_NAME.match(line)
        if not m:
            err.append(f"{where}: not a sample line: {line[:60]!r}")
            continue
        name = m.group(0)
        pos = m.end()
        labels = []
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, where, err)
            if labels is None:
                continue
        rest = line[pos:]
        if rest[:1] not in (" ", "\t"):
            err.append(f"{where}: expected a space and a value after {name}")
            continue
        fields = rest.split()
        if not fields or len(fields) > 2:
            err.append(f"{where}: expected a value and an optional timestamp after {name}")
            continue
        if not FLOAT.fullmatch(fields[0]):
            err.append(f"{where}: {fields[0]!r} is not a valid sample value")
            continue
        if len(fields) == 2 and not TIMESTAMP.fullmatch(fields[1]):
            err.append(f"{where}: {fields[1]!r} is not a valid timestamp")
            continue
        value = float(fields[0].replace("Inf", "inf").replace("NaN", "nan"))
        lmap = {}
        for k, v in labels:
            if k in lmap:
                err.append(f"{where}: label {k} twice")
            if k.startswith("__"):
                err.append(f"{where}: label name {k} is reserved (starts with __)")
            lmap[k] = v
        fam = _family_of(name, s.types)
        if fam is None and s.types.get(name) == "histogram":
            err.append(f"{where}: sample {name} of a histogram has no _bucket, _sum or _count suffix")
            continue
        if fam is None:
            err.append(f"{where}: sample {name} has no TYPE line for its family")
            continue
        if fam.startswith("conflict:"):
            err.append(f"{where}: sample {name} could belong to {fam[9:]}")
            continue
        enter(fam, where)
        sampled.add(fam)
        key = (name, frozenset(lmap.items()))
        if key in series:
            err.append(f"{where}: duplicate series {name}{_fmt(lmap)} (first on line {series[key]})")
            continue
        series[key] = n
        typ = s.types[fam]
        if typ == "counter" and not value >= 0:
            err.append(f"{where}: counter {name} has value {fields[0]}")
        if typ == "histogram":
            if name.endswith("_bucket") and "le" not in lmap:
                err.append(f"{where}: histogram bucket {name} without an le label")
            if not name.endswith("_bucket") and "le" in lmap:
                err.append(f"{where}: {name} must not have an le label")
        if typ == "summary":
            if name == fam and "quantile" not in lmap:
                err.append(f"{where}: summary sample {name} without a quantile label")
            if name != fam and "quantile" in lmap:
                err.append(f"{where}: {name} must not have a quantile label")
        s.samples.append((n, name, fam, lmap, value))

    _check_histograms(s)
    return s


def _fmt(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _check_histograms(s):
    """Buckets cumulative, le="+Inf" equal to _count, _sum and _count beside every bucket set."""
    groups = {}  # (family, labels without le) -> {"buckets": [(le, value, line)], "sum":, "count":}
    for n, name, fam, labels, value in s.samples:
        if s.types[fam] != "histogram":
            continue
        rest = {k: v for k, v in labels.items() if k != "le"}
        g = groups.setdefault((fam, frozenset(rest.items())), {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            if "le" not in labels:
                continue  # reported already
            le = labels["le"]
            if not FLOAT.fullmatch(le) or le.lstrip("+-") == "NaN":
                s.errors.append(f"line {n}: {name} has le=\"{le}\", not a number")
                continue
            g["buckets"].append((float(le.replace("Inf", "inf")), value, n))
        elif name.endswith("_sum"):
            g["sum"] = value
        else:
            g["count"] = (value, n)
    for (fam, rest), g in sorted(groups.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        what = fam + _fmt(dict(rest))
        buckets = sorted(g["buckets"])
        if not buckets:
            s.errors.append(f"histogram {what}: no _bucket series")
            continue
        if g["count"] is None:
            s.errors.append(f"histogram {what}: no _count series")
        if g["sum"] is None:
            s.errors.append(f"histogram {what}: no _sum series")
        if buckets[-1][0] != math.inf:
            s.errors.append(f'histogram {what}: no bucket le="+Inf"')
        for (le0, v0, _), (le1, v1, n1) in zip(buckets, buckets[1:]):
            if le1 == le0:
                s.errors.append(f"line {n1}: histogram {what}: a second bucket le={_le(le1)}")
            elif v1 < v0:
                s.errors.append(
                    f"line {n1}: histogram {what}: bucket le={_le(le1)} counts {_num(v1)}, "
                    f"less than bucket le={_le(le0)} ({_num(v0)}): buckets must be cumulative")
        if any(v < 0 or math.isnan(v) for _, v, _ in buckets):
            s.errors.append(f"histogram {what}: a bucket count is negative or NaN")
        if g["count"] is not None and buckets[-1][0] == math.inf and buckets[-1][1] != g["count"][0]:
            s.errors.append(
                f'line {g["count"][1]}: histogram {what}: _count is {_num(g["count"][0])} '
                f'but bucket le="+Inf" is {_num(buckets[-1][1])}')


def _le(x):
    return "+Inf" if x == math.inf else repr(x)


def _num(x):
    return str(int(x)) if math.isfinite(x) and x == int(x) else repr(x)


# ---------------------------------------------------------------------------
# 2. Metric names in PromQL
# ---------------------------------------------------------------------------

# Words that are PromQL syntax, not series names.
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "atan2", "inf", "nan", "start", "end",
}
# Aggregation operators, which may take their grouping before their arguments.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Keywords followed by a parenthesized list of label names.
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Series that Prometheus itself writes for every target and every alert.
PROMETHEUS_SERIES = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
    "ALERTS", "ALERTS_FOR_STATE",
}


class PromQLError(Exception):
    pass


def _skip_string(q, i):
    quote = q[i]
    i += 1
    while i < len(q) and q[i] != quote:
        i += 2 if q[i] == "\\" and quote != "`" else 1
    if i >= len(q):
        raise PromQLError("a string is not terminated")
    return i + 1


def _skip_to_close(q, i, close):
    """From just after an opening bracket, past its CLOSE (strings skipped)."""
    while i < len(q):
        c = q[i]
        if c in "\"'`":
            i = _skip_string(q, i)
        elif c == close:
            return i + 1
        else:
            i += 1
    raise PromQLError(f"no closing {close!r}")


def _split_args(q, i):
    """The top-level, comma-separated arguments of the call whose '(' is at Q[I]."""
    depth = 0
    args, start = [], i + 1
    j = i
    while j < len(q):
        c = q[j]
        if c in "\"'`":
            j = _skip_string(q, j)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(q[start:j])
                return args, j + 1
        elif c == "," and depth == 1:
            args.append(q[start:j])
            start = j + 1
        j += 1
    raise PromQLError("no closing ')'")


def metric_names(q):
    """The series names a PromQL expression (or a Grafana label_values() query) selects."""
    names = []
    i = 0
    n = len(q)
    depth = 0
    while i < n:
        c = q[i]
        if c in "()":
            depth += 1 if c == "(" else -1
            if depth < 0:
                raise PromQLError(f"unbalanced ')' at column {i + 1}")
            i += 1
        elif c in " \t\r\n,+-*/%^=!<>@":
            i += 1
        elif c == "#":  # a comment, to the end of the line
            while i < n and q[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = _skip_string(q, i)
        elif c == "{":  # label matchers
            i = _skip_to_close(q, i + 1, "}")
        elif c == "[":  # a range or subquery; may hold Grafana's $__rate_interval
            i = _skip_to_close(q, i + 1, "]")
        elif c == "$":  # a Grafana variable: $name or ${name}
            if q.startswith("${", i):
                i = _skip_to_close(q, i + 2, "}")
            else:
                i += 1
                while i < n and (q[i].isalnum() or q[i] == "_"):
                    i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and q[i + 1].isdigit()):
            # a number or a duration (5m, 1h30m, 0x1f, 1e-3)
            i += 1
            while i < n and (q[i].isalnum() or q[i] in "._"
                             or (q[i] in "+-" and q[i - 1] in "eE" and q[i - 2].isdigit())):
                i += 1
        else:
            m = METRIC_NAME.match(q, i)
            if not m:
                raise PromQLError(f"unexpected {c!r} at column {i + 1}")
            word = m.group(0)
            i = m.end()
            j = i
            while j < n and q[j] in " \t\r\n":
                j += 1
            call = j < n and q[j] == "("
            # an aggregation with its grouping first: sum by (a) (...), topk without (b) (5, ...)
            grouping = re.match(r"(by|without)\b", q[j:])
            if word in AGGREGATIONS and grouping:
                continue
            if word == "label_values" and call:
                args, i = _split_args(q, j)
                if len(args) == 2:
                    names += metric_names(args[0])
            elif word.lower() in KEYWORDS:
                if word in LABEL_LISTS and call:
                    i = _skip_to_close(q, j + 1, ")")
            elif not call:
                names.append(word)
            # else: a function or an aggregation; its arguments are read next
    if depth:
        raise PromQLError("unbalanced '('")
    return names


def check_names(where, query, exported, errors):
    """Every series QUERY selects must be exported; reports under WHERE."""
    try:
        names = metric_names(query)
    except PromQLError as e:
        errors.append(f"{where}: cannot read the query ({e}): {query!r}")
        return []
    for name in dict.fromkeys(names):
        if name in PROMETHEUS_SERIES or name in exported:
            continue
        hint = ""
        if name + "_bucket" in exported:
            hint = " (a histogram: use its _bucket, _sum or _count series)"
        errors.append(f"{where}: {name} is not exported by the scrape{hint}")
    return names


# ---------------------------------------------------------------------------
# 3. The dashboard and the alert file
# ---------------------------------------------------------------------------


def _panels(panels):
    for p in panels or []:
        yield p
        yield from _panels(p.get("panels"))  # a collapsed row holds its panels


def check_dashboard(dash, exported, errors):
    used = set()
    if not isinstance(dash, dict):
        errors.append("dashboard: not a JSON object")
        return used
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append(f"dashboard: schemaVersion {dash.get('schemaVersion')!r} is below 36")
    for key in ("title", "uid"):
        if not dash.get(key):
            errors.append(f"dashboard: no {key}")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("dashboard: no template variable 'datasource' of type datasource, query prometheus")
    node = variables.get("node")
    if not node or node.get("type") != "query":
        errors.append("dashboard: no query template variable 'node'")
    else:
        q = node.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not q or re.sub(r"\s+", "", q) != "label_values(gbx_build_info,node)":
            errors.append(f"dashboard: variable node is {q!r}, not label_values(gbx_build_info, node)")
    for name, v in variables.items():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            used.update(check_names(f"dashboard variable {name}", q or "", exported, errors))

    ids = set()
    targets = 0
    for p in _panels(dash.get("panels")):
        title = p.get("title") or "?"
        pid = p.get("id")
        if pid in ids:
            errors.append(f"dashboard panel {title!r}: id {pid} used twice")
        ids.add(pid)
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            errors.append(f"dashboard panel {title!r}: no targets")
        pds = p.get("datasource") or {}
        if pds.get("uid") != "${datasource}":
            errors.append(f"dashboard panel {title!r}: datasource is not ${{datasource}}")
        for t in p.get("targets") or []:
            targets += 1
            expr = t.get("expr")
            if not expr:
                errors.append(f"dashboard panel {title!r}: target {t.get('refId')} has no expr")
                continue
            used.update(check_names(f"dashboard panel {title!r}", expr, exported, errors))
    if targets == 0:
        errors.append("dashboard: no panel queries anything")
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            used.update(check_names(f"dashboard annotation {a.get('name')!r}", a["expr"], exported, errors))
    return used


DURATION = re.compile(r"(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
GROUP_KEYS = {"name", "interval", "rules", "limit"}
SEVERITIES = ("page", "ticket")
ANNOTATIONS = ("summary", "description", "runbook")


def _slug(heading):
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[`*_]|<[^>]*>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path):
    anchors = set()
    fence = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fence = not fence
            elif not fence and re.match(r"#{1,6} ", line):
                anchors.add(_slug(line.lstrip("#")))
            anchors.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
    return anchors


def _find_upwards(start, rel):
    d = os.path.abspath(start)
    while True:
        p = os.path.join(d, rel)
        if os.path.isfile(p):
            return p
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def check_alerts(doc, exported, alerts_path, errors, notes):
    used = set()
    if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
        errors.append("alerts: the file must be a mapping with one key, groups, a list")
        return used
    seen = set()
    anchor_cache = {}
    for gi, g in enumerate(doc["groups"]):
        if not isinstance(g, dict) or not g.get("name") or not isinstance(g.get("rules"), list) or not g["rules"]:
            errors.append(f"alerts: group {gi + 1} needs a name and a non-empty list of rules")
            continue
        for k in set(g) - GROUP_KEYS:
            errors.append(f"alerts: group {g['name']}: unknown key {k}")
        for ri, r in enumerate(g["rules"]):
            name = r.get("alert") if isinstance(r, dict) else None
            where = f"alert {name}" if name else f"alerts: group {g['name']} rule {ri + 1}"
            if not isinstance(r, dict) or not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
                errors.append(f"{where}: no valid alert name (this file holds alerting rules only)")
                continue
            if name in seen:
                errors.append(f"{where}: defined twice")
            seen.add(name)
            for k in set(r) - RULE_KEYS:
                errors.append(f"{where}: unknown key {k}")
            expr = r.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                errors.append(f"{where}: no expr")
            else:
                used.update(check_names(where, expr, exported, errors))
            for key in ("for", "keep_firing_for"):
                if key == "keep_firing_for" and key not in r:
                    continue
                v = r.get(key)
                if not isinstance(v, str) or not v or not DURATION.fullmatch(v):
                    errors.append(f"{where}: {key} must be a duration such as 5m or 0s (got {v!r})")
            labels = r.get("labels")
            if not isinstance(labels, dict) or labels.get("severity") not in SEVERITIES:
                errors.append(f"{where}: labels.severity must be one of {', '.join(SEVERITIES)}")
            ann = r.get("annotations")
            if not isinstance(ann, dict):
                errors.append(f"{where}: no annotations")
                continue
            for key in ANNOTATIONS:
                if not isinstance(ann.get(key), str) or not ann[key].strip():
                    errors.append(f"{where}: no annotations.{key}")
            runbook = ann.get("runbook")
            if isinstance(runbook, str) and "#" in runbook and "://" not in runbook:
                rel, anchor = runbook.split("#", 1)
                path = _find_upwards(os.path.dirname(alerts_path) or ".", rel)
                if path is None:
                    notes.append(f"{where}: runbook file {rel} not found; its anchor is not checked")
                else:
                    if path not in anchor_cache:
                        anchor_cache[path] = _anchors(path)
                    if anchor not in anchor_cache[path]:
                        errors.append(f"{where}: runbook {runbook}: {rel} has no heading with anchor #{anchor}")
    if not seen:
        errors.append("alerts: no alerting rules")
    return used


# ---------------------------------------------------------------------------


def main(argv):
    if len(argv) != 4 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    if yaml is None:
        print("SKIP: python3-yaml is not installed (apt-get install python3-yaml)")
        return 77
    metrics_path, dash_path, alerts_path = argv[1:4]
    try:
        with open(metrics_path, encoding="utf-8") as f:
            text = f.read()
        with open(dash_path, encoding="utf-8") as f:
            dash_text = f.read()
        with open(alerts_path, encoding="utf-8") as f:
            alerts_text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.stderr.write(f"ops_check: {e}\n")
        return 2

    scrape = parse_exposition(text)
    errors = [f"{metrics_path}: {e}" for e in scrape.errors]
    exported = scrape.exported()
    notes = []
    problems = []
    try:
        dash = json.loads(dash_text)
    except json.JSONDecodeError as e:
        problems.append(f"dashboard: not valid JSON: {e}")
        dash = None
    used_dash = check_dashboard(dash, exported, problems) if dash is not None else set()
    errors += [f"{dash_path}: {e}" for e in problems]
    problems = []
    try:
        doc = yaml.safe_load(alerts_text)
    except yaml.YAMLError as e:
        problems.append(f"alerts: not valid YAML: {e}")
        doc = None
    used_alerts = check_alerts(doc, exported, alerts_path, problems, notes) if doc is not None else set()
    errors += [f"{alerts_path}: {e}" for e in problems]

    for n in notes:
        print(f"note: {n}")
    if errors:
        for e in errors:
            print(f"FAIL: {e}")
        print(f"ops_check: {len(errors)} problem(s)")
        return 1
    families = {exported[n] for n in used_dash | used_alerts if n in exported}
    unused = sorted(set(scrape.types) - families)
    print(f"ops_check: ok: {len(scrape.samples)} samples in {len(scrape.types)} families; "
          f"the dashboard uses {len({exported[n] for n in used_dash if n in exported})} of them, "
          f"the alerts {len({exported[n] for n in used_alerts if n in exported})}")
    if unused:
        print(f"ops_check: exported but neither charted nor alerted on: {', '.join(unused)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
