// The rules' data (what the system needs), the results and small helpers.
// Part of check.js (tools/manifest-check).
'use strict';


const NAMESPACE = 'mp3converter';
const APP_LABEL = 'app.kubernetes.io/name';
// The four services: base replica count; the public port (PORT, container port `http`), which never serves /metrics,
// of the two that have one; and the admin port (ADMIN_PORT, container port `admin`): the probes' /healthz and /readyz,
// and /metrics, which Prometheus finds by the pod template's annotations (SCRAPE_ANNOTATIONS).
const SERVICES = {
  auth: { replicas: 2, port: 5000, adminPort: 5001 },
  gateway: { replicas: 2, port: 8080, adminPort: 8090 },
  converter: { replicas: 4, port: null, adminPort: 8081 },
  notification: { replicas: 2, port: null, adminPort: 8082 },
};
const ADMIN_PORT_NAME = 'admin';
const SCRAPE_ANNOTATIONS = (adminPort) => ({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(adminPort), 'prometheus.io/path': '/metrics' });
// What the monitoring namespace may reach (NetworkPolicy): the services' admin ports and RabbitMQ's Prometheus plugin.
const MONITORING_NAMESPACE = 'ns:monitoring';
const RABBITMQ_METRICS_PORTS = [15692, 'prometheus'];
const STATEFUL = ['mysql', 'mongodb', 'rabbitmq'];
// Who may open connections to whom (NetworkPolicy). `ns:NAME` is a namespace; optional sources may be allowed.
const INGRESS_SOURCES = {
  gateway: { required: ['ns:ingress-nginx'], optional: ['ns:monitoring'] },
  auth: { required: ['gateway', 'notification'], optional: ['ns:monitoring'] },
  converter: { required: [], optional: ['ns:monitoring'] },
  notification: { required: [], optional: ['ns:monitoring'] },
  // The replicated members reach one another (components/ha: HA.peers), and the Job mongodb-init the MongoDB members.
  mysql: { required: ['auth', 'gateway', 'notification'], optional: ['mysql'] },
  mongodb: { required: ['gateway', 'converter'], optional: ['mongodb', 'mongodb-init'] },
  rabbitmq: { required: ['auth', 'gateway', 'converter', 'notification'], optional: ['ns:monitoring', 'ns:keda', 'rabbitmq'] },
  maildev: { required: ['notification'], optional: [] },
  'mongodb-init': { required: [], optional: [] },
};
// Where each workload may open connections to (every pod is under a default deny of egress): `app:port/protocol`;
// dns for the cluster's DNS (kube-system's kube-dns); internet for an ipBlock that excepts every range of
// PRIVATE_RANGES (`all` ports: the webhooks' callback_url may name any). The converters parse untrusted media.
const DNS_EGRESS = ['dns:53/UDP', 'dns:53/TCP'];
const EGRESS_DESTINATIONS = {
  auth: { required: ['mysql:3306/TCP', 'rabbitmq:5672/TCP', ...DNS_EGRESS], optional: [] },
  gateway: { required: ['auth:5000/TCP', 'mysql:3306/TCP', 'rabbitmq:5672/TCP', 'mongodb:27017/TCP', ...DNS_EGRESS], optional: [] },
  converter: { required: ['rabbitmq:5672/TCP', 'mongodb:27017/TCP', ...DNS_EGRESS], optional: [] },
  notification: { required: ['rabbitmq:5672/TCP', 'mysql:3306/TCP', 'auth:5000/TCP', 'internet:all/TCP', ...DNS_EGRESS],
    optional: ['maildev:1025/TCP'] },
  // Single nodes connect nowhere; the members of a replicated one (components/ha) to one another, and RabbitMQ's
  // peer discovery to the Kubernetes API (KUBERNETES_API).
  mysql: { required: DNS_EGRESS, optional: ['mysql:3306/TCP', 'mysql:4444/TCP', 'mysql:4567/TCP', 'mysql:4568/TCP'] },
  mongodb: { required: DNS_EGRESS, optional: ['mongodb:27017/TCP'] },
  rabbitmq: { required: DNS_EGRESS, optional: ['rabbitmq:4369/TCP', 'rabbitmq:25672/TCP', 'rabbitmq:35672-35682/TCP', 'kubernetes-api:443/TCP', 'kubernetes-api:6443/TCP'] },
  maildev: { required: DNS_EGRESS, optional: [] },
  // components/ha: the Job that initiates the MongoDB replica set.
  'mongodb-init': { required: ['mongodb:27017/TCP', ...DNS_EGRESS], optional: [] },
};
// RabbitMQ's peer discovery asks the Kubernetes API for its headless Service's endpoints (components/ha). A
// NetworkPolicy can name the API server only by address, a private one in most clusters: the one policy of this name
// may reach single addresses (/32, /128) on the API's ports, from RabbitMQ's pods only (egress target
// `kubernetes-api`).
const KUBERNETES_API = { policy: 'rabbitmq-kubernetes-api', app: 'rabbitmq', ports: [443, 6443] };
// What no egress rule may reach: the pod, service and node networks, loopback, and link-local (the cloud's metadata
// service, 169.254.169.254). An ipBlock must except each of these that its cidr overlaps.
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8',
  'fc00::/7', 'fe80::/10', '::1/128'];

// RabbitMQ (base/rabbitmq-definitions.json): the topology of libs/amqp declare_topology (default names), in its order,
// which the broker's definitions make (the services run with AMQP_DECLARE_TOPOLOGY=false and their users may declare
// nothing of it); and what each service publishes to and consumes, from which its user's least-privilege permissions
// follow. Nothing is published through the default exchange: a work queue that others write to has an inbox, the
// direct exchange <q>.in (bound with the key <q>), and each work queue with retries a direct exchange <q>.retry to which
// its delay queues are bound by their delay ("5s"...), where its own consumer republishes a retry.
const AMQP_WORK_QUEUES = [
  { name: 'video', retries: true, inbox: true },
  { name: 'mp3', retries: true, inbox: true },
  { name: 'gateway.status', retries: false, inbox: false, status: 'job.*' },
  { name: 'notification.failed', retries: true, inbox: false, status: 'job.failed' },
  { name: 'notification.webhook', retries: true, inbox: true },
  { name: 'notification.account', retries: true, inbox: true },
];
const AMQP_RETRY_DELAYS = [5, 30, 120];
// Every durable queue is a quorum queue (replicated on the nodes of a cluster: components/ha), as libs/amqp declares
// them with AMQP_QUEUE_TYPE=quorum, its default. A quorum queue that dead-letters (the work queues to <q>.dead, the
// delay queues back to their work queue) does so at least once: x-dead-letter-strategy at-least-once, which RabbitMQ
// (3.10+) applies only with x-overflow reject-publish (otherwise it falls back to at-most-once, silently).
const AMQP_QUEUE_TYPE = 'quorum';
const AMQP_AT_LEAST_ONCE = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
const AMQP_TOPOLOGY = (() => {
  const exchanges = [{ name: 'mp3c.status', type: 'topic' }, { name: 'mp3c.dead', type: 'direct' }];
  const queues = [];
  const bindings = [];
  const type = { 'x-queue-type': AMQP_QUEUE_TYPE };
  for (const { name: q, retries, inbox, status } of AMQP_WORK_QUEUES) {
    queues.push({ name: q, arguments: { 'x-dead-letter-exchange': 'mp3c.dead', 'x-dead-letter-routing-key': q, ...AMQP_AT_LEAST_ONCE, ...type } });
    queues.push({ name: `${q}.dead`, arguments: { ...type } });
    bindings.push({ source: 'mp3c.dead', destination: `${q}.dead`, routing_key: q });
    if (inbox) {
      exchanges.push({ name: `${q}.in`, type: 'direct' });
      bindings.push({ source: `${q}.in`, destination: q, routing_key: q });
    }
    if (retries) {
      exchanges.push({ name: `${q}.retry`, type: 'direct' });
      for (const s of AMQP_RETRY_DELAYS) {
        // Expired messages go back through the default exchange: the broker's dead-lettering, no user's permission.
        queues.push({ name: `${q}.retry.${s}s`, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q, 'x-message-ttl': s * 1000, ...AMQP_AT_LEAST_ONCE, ...type } });
        bindings.push({ source: `${q}.retry`, destination: `${q}.retry.${s}s`, routing_key: `${s}s` });
      }
    }
    if (status) bindings.push({ source: 'mp3c.status', destination: q, routing_key: status });
  }
  return { exchanges, queues, bindings };
})();
// A gateway replica's own queue, gateway.status.live.<12 hex digits> (services/gateway/src/gateway_app.cpp).
const AMQP_LIVE_QUEUE = 'gateway.status.live.0123456789ab';
// publishes: exchanges written to; topics: its routing keys on mp3c.status; consumes: queues read; own: queues it
// declares itself (the only thing any service declares with AMQP_DECLARE_TOPOLOGY=false); binds: the bindings of its own
// queues that it makes. The gateway also asks the depth of `video` with a passive queue.declare, which RabbitMQ allows
// without any permission (checked on RabbitMQ 3.10): nothing to grant for it.
const AMQP_USERS = {
  auth: { publishes: ['notification.account.in'], topics: [], consumes: [], own: [], binds: [] },
  // mp3.in: the message of a job done at once from an earlier identical upload; job.queued: a retry.
  gateway: { publishes: ['video.in', 'mp3.in', 'mp3c.status'], topics: ['job.cancelled', 'job.queued'],
    consumes: ['gateway.status', AMQP_LIVE_QUEUE],
    own: [AMQP_LIVE_QUEUE], binds: [{ queue: AMQP_LIVE_QUEUE, exchange: 'mp3c.status', routing_key: 'job.*' }] },
  converter: { publishes: ['mp3.in', 'mp3c.status', 'video.retry'], topics: ['job.processing', 'job.done', 'job.failed'],
    consumes: ['video'], own: [], binds: [] },
  notification: { publishes: ['notification.webhook.in', 'mp3.retry', 'notification.failed.retry', 'notification.webhook.retry', 'notification.account.retry'],
    topics: [], consumes: ['mp3', 'notification.failed', 'notification.webhook', 'notification.account'], own: [], binds: [] },
};
const RABBITMQ_MANAGEMENT_PORTS = [15672, 15671, 'management'];
// KEDA (components/keda): its operator, in the namespace keda, reads the depth of the converters' queue from the
// management API (plain HTTP, 15672) as the broker's user keda, which may read the API (tag management) and nothing
// else (no permission on any exchange or queue); the only source besides port-forward that reaches 15672. The
// ScaledObject scales Deployment/converter on its queue (AMQP_USERS.converter.consumes).
const KEDA = { source: 'ns:keda', port: 15672, user: 'keda', tags: ['management'], passwordKey: 'RABBITMQ_KEDA_PASSWORD',
  target: { kind: 'Deployment', name: 'converter' } };
// The largest upload the gateway accepts plus the multipart framing; nginx must let at least this through.
const MIN_BODY_BYTES = 2 * 1024 ** 3 + 1024 ** 2;
const MIN_PROXY_TIMEOUT_SECONDS = 600;
const POD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod'];
// High availability (components/ha, in overlays/production; issue 22): RabbitMQ, MongoDB and MariaDB as three
// members each, never two on one node, and what each member needs to reach the others (peers: `app:port/TCP` both
// ways).
const HA = {
  replicas: 3,
  hostKey: 'kubernetes.io/hostname',
  zoneKey: 'topology.kubernetes.io/zone',
  statefulSets: {
    rabbitmq: { peers: ['rabbitmq:4369/TCP', 'rabbitmq:25672/TCP', 'rabbitmq:35672-35682/TCP'] },
    mongodb: { peers: ['mongodb:27017/TCP'] },
    mysql: { peers: ['mysql:4444/TCP', 'mysql:4567/TCP', 'mysql:4568/TCP'] },
  },
  amqpPort: 5672,
  mongoPort: 27017,
  // What STORAGE_URL's query must say: the set's name (mongod's --replSet) and these.
  storageOptions: { w: 'majority', journal: 'true', retryWrites: 'true', retryReads: 'true', readPreference: 'primary' },
};

// Per overlay: what the issue asks of it.
const OVERLAY_EXPECTATIONS = {
  base: { replicas: true },
  'overlays/minikube': { maildev: true, smtp: { SMTP_HOST: 'maildev', SMTP_TLS: 'none' }, localImages: true },
  'overlays/minikube-keda': { maildev: true, smtp: { SMTP_HOST: 'maildev', SMTP_TLS: 'none' }, localImages: true, keda: true },
  'overlays/production': { tls: true, keda: true, ha: true, smtp: { SMTP_TLS: 'starttls' }, notSmtpHost: 'maildev' },
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

// CIDRs (IPv4 and IPv6) as BigInt ranges: { v, first, last }; null when malformed.
function parseCidr(text) {
  const [addr, bitsText] = String(text).split('/');
  let v;
  let value = 0n;
  if (addr.includes(':')) {
    v = 6;
    const [head, tail] = addr.split('::');
    const groups = (p) => (p ? p.split(':') : []);
    const h = groups(head);
    const t = tail === undefined ? [] : groups(tail);
    if (tail === undefined ? h.length !== 8 : h.length + t.length > 7) return null;
    const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    for (const g of all) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      value = (value << 16n) | BigInt(parseInt(g, 16));
    }
  } else {
    v = 4;
    const parts = addr.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
    for (const p of parts) value = (value << 8n) | BigInt(p);
  }
  const width = v === 4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return null;
  const size = 1n << BigInt(width - bits);
  const first = value - (value % size);
  return { v, first, last: first + size - 1n, text };
}
// The ranges of `forbidden` that an ipBlock ({cidr, except}) lets some address of through.
function ipBlockReaches(ipBlock, forbidden) {
  const cidr = parseCidr(ipBlock.cidr);
  if (!cidr) return [`${ipBlock.cidr} (not a CIDR)`];
  const excepts = (ipBlock.except || []).map(parseCidr).filter((e) => e && e.v === cidr.v);
  const reached = [];
  for (const f of forbidden.map(parseCidr)) {
    if (f.v !== cidr.v) continue;
    // The part of the forbidden range inside the block must be covered by the excepts.
    const first = f.first > cidr.first ? f.first : cidr.first;
    const last = f.last < cidr.last ? f.last : cidr.last;
    if (first > last) continue;
    let next = first;
    for (const e of excepts.filter((x) => x.last >= first && x.first <= last).sort((a, b) => (a.first < b.first ? -1 : 1))) {
      if (e.first > next) break;
      if (e.last >= next) next = e.last + 1n;
    }
    if (next <= last) reached.push(f.text);
  }
  return reached;
}

// AMQP_URL: one amqp:// URL, or a cluster's nodes as URLs separated by commas (libs/amqp tries them in turn).
const amqpUrls = (value) => String(value || '').split(',').map((u) => u.trim()).filter(Boolean);

function podSpecOf(obj) {
  switch (obj.kind) {
    case 'Pod': return { spec: obj.spec, labels: (obj.metadata || {}).labels, annotations: (obj.metadata || {}).annotations };
    case 'CronJob': {
      const t = (((obj.spec || {}).jobTemplate || {}).spec || {}).template || {};
      return { spec: t.spec, labels: (t.metadata || {}).labels, annotations: (t.metadata || {}).annotations };
    }
    default: {
      const t = (obj.spec || {}).template || {};
      return { spec: t.spec, labels: (t.metadata || {}).labels, annotations: (t.metadata || {}).annotations };
    }
  }
}

module.exports = { NAMESPACE, APP_LABEL, SERVICES, ADMIN_PORT_NAME, SCRAPE_ANNOTATIONS, MONITORING_NAMESPACE, RABBITMQ_METRICS_PORTS, STATEFUL, INGRESS_SOURCES, EGRESS_DESTINATIONS, DNS_EGRESS, PRIVATE_RANGES, AMQP_QUEUE_TYPE, AMQP_AT_LEAST_ONCE, AMQP_TOPOLOGY, AMQP_LIVE_QUEUE, AMQP_USERS, KUBERNETES_API, HA, parseCidr, ipBlockReaches, RABBITMQ_MANAGEMENT_PORTS, KEDA, MIN_BODY_BYTES, MIN_PROXY_TIMEOUT_SECONDS, POD_KINDS, OVERLAY_EXPECTATIONS, results, check, isObject, ref, labelsMatch, selectorIsEmpty, parseQuantity, parseDuration, parseNginxSize, amqpUrls, podSpecOf };
