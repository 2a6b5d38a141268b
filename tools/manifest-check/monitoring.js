// Monitoring (deploy/monitoring): the PodMonitors, the alerts (PrometheusRule) and the Grafana dashboard, which
// check.js renders from the repository itself (kubectl kustomize: no secrets there) and validates against
// prometheus-operator's CRDs (schema.js). Here: the PodMonitors scrape every service's admin port and RabbitMQ's
// per-queue families; every metric the alerts and the dashboard query is a family the services register (services/,
// libs/: the registry of libs/metrics), a RabbitMQ family the PodMonitor asks for, or kube-state-metrics' or
// Prometheus's own; every alert says how bad it is and what it means. (tests/e2e/monitoring_check.py checks the same
// names against live scrapes.) Part of check.js (tools/manifest-check).
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const YAML = require('yaml');
const { NAMESPACE, APP_LABEL, SERVICES, ADMIN_PORT_NAME, check, isObject, ref, labelsMatch } = require('./common');
const { byKind, pods } = require('./policy');

const MONITORING_DIR = path.join('deploy', 'monitoring');
const SEVERITIES = ['warning', 'critical'];
// RabbitMQ's /metrics/detailed families (rabbitmq_prometheus, RabbitMQ 3.13) and the per-queue names each gives.
const RABBITMQ_FAMILIES = {
  queue_coarse_metrics: ['rabbitmq_detailed_queue_messages_ready', 'rabbitmq_detailed_queue_messages_unacked',
    'rabbitmq_detailed_queue_messages', 'rabbitmq_detailed_queue_process_reductions_total'],
  queue_consumer_count: ['rabbitmq_detailed_queue_consumers'],
  queue_metrics: ['rabbitmq_detailed_queue_consumers', 'rabbitmq_detailed_queue_consumer_capacity',
    'rabbitmq_detailed_queue_consumer_utilisation', 'rabbitmq_detailed_queue_process_memory_bytes',
    'rabbitmq_detailed_queue_messages_ram', 'rabbitmq_detailed_queue_messages_ram_bytes',
    'rabbitmq_detailed_queue_messages_ready_ram', 'rabbitmq_detailed_queue_messages_unacked_ram',
    'rabbitmq_detailed_queue_messages_persistent', 'rabbitmq_detailed_queue_messages_persistent_bytes',
    'rabbitmq_detailed_queue_messages_bytes', 'rabbitmq_detailed_queue_messages_ready_bytes',
    'rabbitmq_detailed_queue_messages_unacked_bytes', 'rabbitmq_detailed_queue_messages_paged_out',
    'rabbitmq_detailed_queue_messages_paged_out_bytes', 'rabbitmq_detailed_queue_disk_reads_total',
    'rabbitmq_detailed_queue_disk_writes_total'],
};
// Series that no scrape of ours gives: Prometheus's own, kube-state-metrics' (kube_*).
const PROMETHEUS_OWN = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling',
  'scrape_series_added', 'ALERTS', 'ALERTS_FOR_STATE'];
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

// ---------------------------------------------------------------------------------------------------------------
// PromQL: the metric names an expression selects (as tests/e2e/monitoring_check.py finds them).

const NAME = '[A-Za-z_:][A-Za-z0-9_:]*';
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset',
  'bool', 'inf', 'nan', 'start', 'end']);
function promqlMetricNames(expr) {
  let s = String(expr);
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // strings: label values, regular expressions
  s = s.replace(/#[^\n]*/g, ' '); // comments
  s = s.replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, ' '); // Grafana's variables
  s = s.replace(/\{[^{}]*\}/g, ' '); // label matchers
  s = s.replace(/\[[^[\]]*\]/g, ' '); // ranges and subqueries
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, ' '); // label lists
  const names = new Set();
  for (const m of s.matchAll(new RegExp(`(?<![\\w.:])(${NAME})(\\s*\\()?`, 'g'))) {
    if (!m[2] && !KEYWORDS.has(m[1])) names.add(m[1]); // not a function, an aggregation or a keyword
  }
  return names;
}

// Every PromQL expression of a dashboard: the panels' targets (rows' nested panels too), and Prometheus query variables
// (label_values(SELECTOR, LABEL): the selector only).
function dashboardExprs(dashboard) {
  const out = [];
  const walk = (node) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (isObject(node)) {
      if (typeof node.expr === 'string') out.push(node.expr);
      for (const [k, v] of Object.entries(node)) if (k !== 'templating') walk(v);
    }
  };
  walk(dashboard);
  for (const v of ((dashboard.templating || {}).list || [])) {
    const q = v.type === 'query' ? (isObject(v.query) ? v.query.query : v.query) : null;
    if (typeof q !== 'string') continue;
    const lv = /^\s*label_values\s*\(([\s\S]*)\)\s*$/.exec(q);
    if (lv) { if (lv[1].includes(',')) out.push(lv[1].slice(0, lv[1].lastIndexOf(','))); } else out.push(q);
  }
  return out;
}

// The metric families the services register (libs/metrics: counter, gauge, histogram, callback_gauge), by name:
// its type. Read once per repository.
const registeredByRepo = new Map();
function registeredMetrics(repo) {
  if (!registeredByRepo.has(repo)) registeredByRepo.set(repo, readRegisteredMetrics(repo));
  return registeredByRepo.get(repo);
}
function readRegisteredMetrics(repo) {
  const families = new Map();
  const walk = (dir) => {
    let entries;
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) { if (e.name !== 'test' && e.name !== 'tests') walk(p); continue; }
      if (!/\.(cpp|hpp|h)$/.test(e.name) || /_test\.cpp$/.test(e.name)) continue;
      const text = fs.readFileSync(p, 'utf8');
      for (const m of text.matchAll(/\b(counter|gauge|histogram|callback_gauge)\(\s*"([A-Za-z_:][A-Za-z0-9_:]*)"/g)) {
        families.set(m[2], m[1] === 'callback_gauge' ? 'gauge' : m[1]);
      }
    }
  };
  walk(path.join(repo, 'services'));
  walk(path.join(repo, 'libs'));
  return families;
}

// Renders deploy/monitoring; { objects } or { error }.
function renderMonitoring(repo) {
  const dir = path.join(repo, MONITORING_DIR);
  if (!fs.existsSync(path.join(dir, 'kustomization.yaml'))) return { error: `no ${MONITORING_DIR}/kustomization.yaml` };
  try {
    const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { objects: YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(isObject) };
  } catch (e) {
    return { error: `kubectl kustomize ${MONITORING_DIR} failed: ${String(e.stderr || e.message).trim()}` };
  }
}

// The dashboards among the objects: { where, dashboard } for each JSON file of a ConfigMap that Grafana loads.
function dashboards(target, objects) {
  const out = [];
  for (const cm of byKind(objects, 'ConfigMap')) {
    for (const [key, text] of Object.entries(cm.data || {})) {
      if (!key.endsWith('.json')) continue;
      const where = `${ref(target, cm)} ${key}`;
      let dashboard = null;
      try { dashboard = JSON.parse(text); } catch (e) { dashboard = { error: e.message }; }
      out.push({ cm, where, dashboard });
    }
  }
  return out;
}

// `workloads`: a rendering of deploy/kubernetes (the pods the PodMonitors should find).
function checkMonitoring(target, objects, { repo, workloads }) {
  for (const o of objects) {
    check('monitoring: in the mp3converter namespace (PodMonitors select pods in their own)', (o.metadata || {}).namespace === NAMESPACE,
      ref(target, o), `namespace ${(o.metadata || {}).namespace}`);
  }

  // Scraping: each service's /metrics on its admin port; RabbitMQ's /metrics/detailed with the families queried.
  const monitors = byKind(objects, 'PodMonitor');
  const families = new Set();
  for (const pm of monitors) {
    for (const e of pm.spec.podMetricsEndpoints || []) {
      if (e.path === '/metrics/detailed') for (const f of ((e.params || {}).family || [])) families.add(f);
    }
  }
  for (const p of pods(workloads || [])) {
    const want = SERVICES[p.app] ? { port: ADMIN_PORT_NAME, path: '/metrics' } : p.app === 'rabbitmq' ? { port: 'prometheus', path: '/metrics/detailed' } : null;
    if (!want) continue;
    const named = (p.spec.containers || []).some((c) => (c.ports || []).some((x) => x.name === want.port));
    const found = monitors.some((pm) => labelsMatch(pm.spec.selector, p.labels) && !(pm.spec.namespaceSelector) &&
      (pm.spec.podMetricsEndpoints || []).some((e) => e.port === want.port && (e.path || '/metrics') === want.path));
    check("monitoring: PodMonitors scrape every service's admin port and RabbitMQ's per-queue metrics", found && named,
      `${target}: ${p.obj.kind}/${p.obj.metadata.name}`,
      named ? `no PodMonitor selects its pods with port ${want.port}, path ${want.path}` : `its pods have no port named ${want.port}`);
    if (found) {
      const labelled = monitors.some((pm) => labelsMatch(pm.spec.selector, p.labels) && (pm.spec.podTargetLabels || []).includes(APP_LABEL));
      check(`monitoring: PodMonitors label the series with ${APP_LABEL} (the queries' per-service label)`, labelled,
        `${target}: ${p.obj.kind}/${p.obj.metadata.name}`, `no podTargetLabels ${APP_LABEL}: the dashboard could not tell the services apart`);
    }
  }

  // What is queried exists.
  const registered = registeredMetrics(repo);
  const known = new Set();
  for (const [name, type] of registered) {
    known.add(name);
    if (type === 'histogram') for (const s of HISTOGRAM_SUFFIXES) known.add(name + s);
  }
  const detailed = new Set([...families].flatMap((f) => RABBITMQ_FAMILIES[f] || []));
  const queried = []; // { where, expr }
  for (const pr of byKind(objects, 'PrometheusRule')) {
    for (const g of pr.spec.groups || []) {
      for (const r of g.rules || []) queried.push({ where: `${ref(target, pr)} ${r.alert || r.record}`, expr: String(r.expr) });
    }
  }
  for (const d of dashboards(target, objects)) {
    if (d.dashboard.error) continue;
    for (const expr of dashboardExprs(d.dashboard)) queried.push({ where: d.where, expr });
  }
  for (const q of queried) {
    const unknown = [];
    for (const name of promqlMetricNames(q.expr)) {
      if (known.has(name) || PROMETHEUS_OWN.includes(name) || name.startsWith('kube_')) continue;
      if (name.startsWith('rabbitmq_detailed_')) {
        if (!detailed.has(name)) unknown.push(`${name} (a RabbitMQ family the PodMonitor does not ask /metrics/detailed for: ${[...families].join(', ') || 'none'})`);
        continue;
      }
      if (name.startsWith('rabbitmq_')) continue; // /metrics, RabbitMQ's aggregates: tests/e2e/monitoring_check.py
      unknown.push(`${name} (no service registers it: services/*/src, libs/*/src)`);
    }
    check('monitoring: the alerts and the dashboard query only metrics that exist', unknown.length === 0, q.where, unknown.join('; '));
  }

  // Alerts say how bad and what.
  for (const pr of byKind(objects, 'PrometheusRule')) {
    for (const g of pr.spec.groups || []) {
      for (const r of g.rules || []) {
        if (!r.alert) continue;
        const problems = [];
        if (!SEVERITIES.includes((r.labels || {}).severity)) problems.push(`severity ${(r.labels || {}).severity}, want ${SEVERITIES.join(' or ')}`);
        for (const a of ['summary', 'description']) if (!String((r.annotations || {})[a] || '').trim()) problems.push(`no ${a}`);
        if (!/docs\/operations\.md/.test(String((r.annotations || {}).description || ''))) problems.push('the description does not point at docs/operations.md (Alerts)');
        check('monitoring: every alert has a severity, a summary and a description', problems.length === 0, `${ref(target, pr)} ${r.alert}`, problems.join('; '));
      }
    }
  }

  // The dashboards: JSON with a uid, every panel on the datasource variable with a query.
  for (const d of dashboards(target, objects)) {
    const problems = [];
    if (d.dashboard.error) problems.push(`not JSON: ${d.dashboard.error}`);
    else {
      if (!d.dashboard.uid || !d.dashboard.title) problems.push('no uid or title');
      if (!((d.dashboard.templating || {}).list || []).some((v) => v.type === 'datasource' && v.name === 'datasource')) problems.push('no datasource variable');
      const panels = [];
      const walk = (list) => { for (const p of list || []) { panels.push(p); walk(p.panels); } };
      walk(d.dashboard.panels);
      for (const p of panels.filter((x) => x.type !== 'row')) {
        if (!(p.targets || []).length || p.targets.some((t) => !String(t.expr || '').trim())) problems.push(`panel "${p.title}" has a target without a query`);
        if ((p.datasource || {}).uid !== '${datasource}') problems.push(`panel "${p.title}" does not use the datasource variable`);
      }
    }
    check('monitoring: dashboards are JSON with a uid, a query in every panel', problems.length === 0, d.where, problems.join('; '));
    check('monitoring: dashboards are labelled for Grafana\'s sidecar', ((d.cm.metadata || {}).labels || {}).grafana_dashboard === '1', d.where,
      'no label grafana_dashboard: "1"');
  }
}

module.exports = { MONITORING_DIR, RABBITMQ_FAMILIES, promqlMetricNames, dashboardExprs, registeredMetrics, renderMonitoring, dashboards, checkMonitoring };
