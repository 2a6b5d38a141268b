"""Do the services export every metric that the dashboard and the alerts of deploy/monitoring query?

    python3 tests/e2e/monitoring_check.py URL [URL ...]

scrapes each URL (a Prometheus text exposition: each service's /metrics on its admin port; RabbitMQ's
http://HOST:15692/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count, as
deploy/monitoring/podmonitors.yaml scrapes it) and prints every metric name used in deploy/monitoring that none of
them exports. Exit status 0 when none is missing, 1 when some are, 2 when a URL cannot be scraped.

Names not every scrape can show are not checked, and listed as such: RabbitMQ's (rabbitmq_*) unless one of the
scrapes is RabbitMQ's (it exports rabbitmq_* names), kube-state-metrics' (kube_*) and Prometheus's own (up...).

As a module (the e2e test, against the running local stack):

    used = metric_names_used(ROOT)
    missing = missing_metrics(used, [text_of_gateway_metrics, text_of_converter_metrics, ...])

Dependency-free: urllib, re, json. The services register every metric family when they start, so a family that has
seen no sample yet still has its # TYPE line, which counts as exported.
"""
import json, os, re, sys, urllib.error, urllib.request

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MONITORING = os.path.join("deploy", "monitoring")

NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
# PromQL's keywords and binary operators that look like names; `start` and `end` are the @ modifier's functions.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
            "inf", "nan", "start", "end"}
# Names a scrape of the services cannot show, by prefix: where they come from. RabbitMQ's are checked after all
# when a scrape exports rabbitmq_* names (RABBITMQ_PREFIX).
RABBITMQ_PREFIX = "rabbitmq_"
EXTERNAL_PREFIXES = {"kube_": "kube-state-metrics"}
# Series that Prometheus makes itself, for every target or rule.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                  "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# ---- the names used ------------------------------------------------------------------------------------------------

def promql_metric_names(expr):
    """The metric names a PromQL expression selects (without its functions, keywords, label names and values)."""
    s = expr
    # Strings first: label values and regular expressions may hold anything (\\. , braces, names).
    s = re.sub(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'|`[^`]*`", '""', s)
    s = re.sub(r"#[^\n]*", " ", s)  # comments
    # Grafana's variables ($__rate_interval, ${var}, [[var]]) outside strings: ranges and the like.
    s = re.sub(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]", " ", s)
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers: label names
    s = re.sub(r"\[[^\[\]]*\]", " ", s)  # ranges and subqueries
    # Label lists of aggregations and vector matching: by (le, route), on (queue), group_left (x).
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])(" + NAME + r")(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name in KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(name)
    return names


def grafana_query_names(query):
    """The metric names of a Grafana Prometheus variable's query: label_values(SELECTOR, LABEL) selects the first
    argument only (the second is a label name), query_result(EXPR) and metrics(REGEX) are PromQL and a regex."""
    m = re.match(r"\s*label_values\s*\((.*)\)\s*$", query, re.S)
    if m:
        args = m.group(1)
        depth = 0
        for i, c in enumerate(args):
            depth += c in "({[" and 1 or c in ")}]" and -1 or 0
            if c == "," and depth == 0:
                return promql_metric_names(args[:i])
        return set() if re.fullmatch(r"\s*" + NAME + r"\s*", args) else promql_metric_names(args)
    m = re.match(r"\s*query_result\s*\((.*)\)\s*$", query, re.S)
    if m:
        return promql_metric_names(m.group(1))
    return set() if re.match(r"\s*(metrics|label_names)\s*\(", query) else promql_metric_names(query)


def _yaml_exprs(text):
    """The values of `expr:` keys in a YAML file (plain, quoted, or | and > block scalars), without a YAML parser:
    enough for the rules files of deploy/monitoring."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$", lines[i])
        i += 1
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2)
        if re.fullmatch(r"[|>][+-]?\d*", value):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            out.append("\n".join(block))
        elif value[:1] in "\"'" and value[-1:] == value[:1]:
            out.append(value[1:-1].replace('\\"', '"').replace("\\\\", "\\") if value[0] == '"' else
                       value[1:-1].replace("''", "'"))
        else:
            out.append(value)
    return out


def _json_exprs(doc):
    """Every PromQL expression of a Grafana dashboard: the panels' targets (rows' nested panels too) and the query of
    each Prometheus query variable; each as (kind, text), kind "promql" or "grafana"."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                out.append(("promql", node["expr"]))
            for key, value in node.items():
                if key != "templating":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for var in ((doc.get("templating") or {}).get("list") or []) if isinstance(doc, dict) else []:
        if var.get("type") == "query":
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if isinstance(q, str):
                out.append(("grafana", q))
    return out


def metric_uses(repo_root=ROOT):
    """{metric name: sorted files of deploy/monitoring (relative to repo_root) that query it}."""
    uses = {}
    base = os.path.join(repo_root, MONITORING)
    for dirpath, _, files in os.walk(base):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, repo_root)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            names = set()
            if f.endswith(".json"):
                for kind, expr in _json_exprs(json.loads(text)):
                    names |= promql_metric_names(expr) if kind == "promql" else grafana_query_names(expr)
            elif f.endswith((".yaml", ".yml")):
                for expr in _yaml_exprs(text):
                    names |= promql_metric_names(expr)
            for n in names:
                uses.setdefault(n, set()).add(rel)
    return {n: sorted(files) for n, files in sorted(uses.items())}


def metric_names_used(repo_root=ROOT):
    """Every metric name that the dashboard and the alerts of deploy/monitoring query, as a set."""
    return set(metric_uses(repo_root))


# ---- the names exported --------------------------------------------------------------------------------------------

def exported_metric_names(text):
    """The metric names of one Prometheus text exposition (or OpenMetrics): every sample's, and every family's from its
    # TYPE and # HELP lines even without samples, with _bucket, _sum and _count for histograms and summaries."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*(TYPE|HELP)\s+(" + NAME + r")(?:\s+(\S+))?", line)
            if m:
                names.add(m.group(2))
                kind = m.group(3) if m.group(1) == "TYPE" else None
                if kind in ("histogram", "summary", "gaugehistogram"):
                    names.update(m.group(2) + s for s in HISTOGRAM_SUFFIXES)
                elif kind == "counter" and not m.group(2).endswith("_total"):
                    names.add(m.group(2) + "_total")  # OpenMetrics names the family without it
            continue
        m = re.match(NAME, line)
        if m:
            names.add(m.group(0))
    return names


def _not_checked(name, rabbitmq_scraped):
    """Why `name` is not checked against the scrapes, or None when it is."""
    if name in PROMETHEUS_OWN:
        return "made by Prometheus itself"
    if name.startswith(RABBITMQ_PREFIX) and not rabbitmq_scraped:
        return "from RabbitMQ: no RabbitMQ scrape given"
    for prefix, source in EXTERNAL_PREFIXES.items():
        if name.startswith(prefix):
            return "from " + source
    return None


def _exported(scraped_texts):
    exported = set()
    for text in scraped_texts:
        exported |= exported_metric_names(text)
    return exported, any(n.startswith(RABBITMQ_PREFIX) for n in exported)


def missing_metrics(used, scraped_texts):
    """The names of `used` (metric_names_used) that none of `scraped_texts` (each the text of one /metrics scrape)
    exports, sorted; the names that cannot be checked (unchecked_metrics) are left out."""
    exported, rabbitmq = _exported(scraped_texts)
    return sorted(n for n in used if _not_checked(n, rabbitmq) is None and n not in exported)


def unchecked_metrics(used, scraped_texts):
    """{name: why it is not checked} for the names of `used` that these scrapes cannot show."""
    _, rabbitmq = _exported(scraped_texts)
    reasons = {n: _not_checked(n, rabbitmq) for n in sorted(used)}
    return {n: r for n, r in reasons.items() if r is not None}


# ---- the command ---------------------------------------------------------------------------------------------------

def scrape(url, timeout=10):
    request = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    texts = []
    for url in argv:
        try:
            texts.append(scrape(url))
        except (OSError, urllib.error.URLError, ValueError) as e:
            print(f"monitoring_check: cannot scrape {url}: {e}", file=sys.stderr)
            return 2
    uses = metric_uses(ROOT)
    missing = missing_metrics(set(uses), texts)
    unchecked = unchecked_metrics(set(uses), texts)
    print(f"monitoring_check: {len(uses)} metric names in {MONITORING}, {len(argv)} scrapes, "
          f"{len(uses) - len(missing) - len(unchecked)} found, {len(missing)} missing, {len(unchecked)} not checked")
    if missing:
        print("missing (queried in deploy/monitoring, exported by none of the scrapes):")
        for n in missing:
            print(f"  {n}  ({', '.join(uses[n])})")
    if unchecked:
        print("not checked:")
        for n, why in unchecked.items():
            print(f"  {n}  ({why})")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(main(sys.argv[1:]))
