// The rules' data (what the system needs), the results and small helpers.
// Part of check.js (tools/manifest-check).
'use strict';


const NAMESPACE = 'mp3converter';
const APP_LABEL = 'app.kubernetes.io/name';
// The four services: their image, base replica count, and the port of /healthz and /readyz with its variable.
const SERVICES = {
  auth: { replicas: 2, port: 5000, portVar: 'PORT' },
  gateway: { replicas: 2, port: 8080, portVar: 'PORT' },
  converter: { replicas: 4, port: 8081, portVar: 'ADMIN_PORT' },
  notification: { replicas: 2, port: 8082, portVar: 'ADMIN_PORT' },
};
const STATEFUL = ['mysql', 'mongodb', 'rabbitmq'];
// Who may open connections to whom (NetworkPolicy). `ns:NAME` is a namespace; optional sources may be allowed.
const INGRESS_SOURCES = {
  gateway: { required: ['ns:ingress-nginx'], optional: ['ns:monitoring'] },
  auth: { required: ['gateway', 'notification'], optional: ['ns:monitoring'] },
  converter: { required: [], optional: ['ns:monitoring'] },
  notification: { required: [], optional: ['ns:monitoring'] },
  mysql: { required: ['auth', 'gateway', 'notification'], optional: [] },
  mongodb: { required: ['gateway', 'converter'], optional: [] },
  rabbitmq: { required: ['auth', 'gateway', 'converter', 'notification'], optional: ['ns:monitoring'] },
  maildev: { required: ['notification'], optional: [] },
};
// Where a workload may open connections to, for those that get an egress policy: `app:port/protocol`, or dns for the
// cluster's DNS (kube-system's kube-dns on 53). The converters parse untrusted media.
const EGRESS_DESTINATIONS = {
  converter: ['rabbitmq:5672/TCP', 'mongodb:27017/TCP', 'dns:53/UDP', 'dns:53/TCP'],
};
const RABBITMQ_MANAGEMENT_PORTS = [15672, 15671, 'management'];
// The largest upload the gateway accepts plus the multipart framing; nginx must let at least this through.
const MIN_BODY_BYTES = 2 * 1024 ** 3 + 1024 ** 2;
const MIN_PROXY_TIMEOUT_SECONDS = 600;
const POD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod'];
// Per overlay: what the issue asks of it.
const OVERLAY_EXPECTATIONS = {
  base: { replicas: true },
  'overlays/minikube': { maildev: true, smtp: { SMTP_HOST: 'maildev', SMTP_TLS: 'none' }, localImages: true },
  'overlays/production': { tls: true, hpa: true, smtp: { SMTP_TLS: 'starttls' }, notSmtpHost: 'maildev' },
};

// ---------------------------------------------------------------------------------------------------------------
// Results

const results = new Map(); // rule -> { passed, failures: [] }
function check(rule, ok, where, message) {
  if (!results.has(rule)) results.set(rule, { passed: 0, failures: [] });
  const r = results.get(rule);
  if (ok) r.passed += 1;
  else r.failures.push(`${where}: ${message}`);
  return ok;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const ref = (target, obj) => `${target}: ${obj.kind}/${obj.metadata && obj.metadata.name}`;

function labelsMatch(selector, labels) {
  if (!isObject(selector)) return false;
  labels = labels || {};
  const ml = selector.matchLabels || {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const val = labels[e.key];
    switch (e.operator) {
      case 'In': if (!has || !(e.values || []).includes(val)) return false; break;
      case 'NotIn': if (has && (e.values || []).includes(val)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}
const selectorIsEmpty = (s) => isObject(s) && Object.keys(s.matchLabels || {}).length === 0 &&
  (s.matchExpressions || []).length === 0;

// Kubernetes quantities: cpu in cores, memory in bytes.
function parseQuantity(q) {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30,
    Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  return parseFloat(m[1]) * (m[2] ? mult[m[2]] : 1);
}
// The services' durations (docs/configuration.md): 500ms, 30s, 15m, 24h, 7d; a bare number is seconds.
function parseDuration(d) {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(String(d));
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] || 's'];
}
// nginx sizes: 0 (no limit), 100, 10k, 512m, 8g.
function parseNginxSize(s) {
  const m = /^(\d+)([kKmMgG]?)$/.exec(String(s).trim());
  if (!m) return NaN;
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
}

function podSpecOf(obj) {
  switch (obj.kind) {
    case 'Pod': return { spec: obj.spec, labels: (obj.metadata || {}).labels };
    case 'CronJob': {
      const t = (((obj.spec || {}).jobTemplate || {}).spec || {}).template || {};
      return { spec: t.spec, labels: (t.metadata || {}).labels };
    }
    default: {
      const t = (obj.spec || {}).template || {};
      return { spec: t.spec, labels: (t.metadata || {}).labels };
    }
  }
}

module.exports = { NAMESPACE, APP_LABEL, SERVICES, STATEFUL, INGRESS_SOURCES, EGRESS_DESTINATIONS, RABBITMQ_MANAGEMENT_PORTS, MIN_BODY_BYTES, MIN_PROXY_TIMEOUT_SECONDS, POD_KINDS, OVERLAY_EXPECTATIONS, results, check, isObject, ref, labelsMatch, selectorIsEmpty, parseQuantity, parseDuration, parseNginxSize, podSpecOf };
