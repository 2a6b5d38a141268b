// Admin ports: each service serves its probes and /metrics on its admin port (ADMIN_PORT, container port `admin`),
// which Prometheus finds by the pod template's annotations and only the monitoring namespace may reach; the public
// ports (auth's 5000 with its internal routes, the gateway's 8080 behind the Ingress) never serve /metrics, so the
// monitoring namespace never reaches them and the Ingress never routes to an admin port.
// Part of check.js (tools/manifest-check).
'use strict';

const { SERVICES, ADMIN_PORT_NAME, SCRAPE_ANNOTATIONS, MONITORING_NAMESPACE, RABBITMQ_METRICS_PORTS, check, ref, labelsMatch } = require('./common');
const { byKind, find, containerEnv, pods, ingressSources } = require('./policy');

const ADMIN_PORTS = Object.values(SERVICES).map((s) => s.adminPort);
// What the monitoring namespace may reach at all: an admin port or RabbitMQ's Prometheus plugin.
const MONITORING_PORTS = [...ADMIN_PORTS, ...RABBITMQ_METRICS_PORTS.filter((p) => typeof p === 'number')];

// A port as a number: a number, or the name of one of the containers' ports (NaN when none has that name).
function portNumber(containers, port) {
  if (typeof port === 'number') return port;
  for (const c of containers) {
    const named = (c.ports || []).find((x) => x.name === port);
    if (named) return named.containerPort;
  }
  return NaN;
}
const probePort = (probe) => ((probe || {}).httpGet || (probe || {}).tcpSocket || (probe || {}).grpc || {}).port;
// The port a pod serves /metrics on: the service's admin port, RabbitMQ's 15692.
const metricsPort = (app) => (SERVICES[app] ? SERVICES[app].adminPort : app === 'rabbitmq' ? RABBITMQ_METRICS_PORTS[0] : null);

function checkServicePods(target, objects) {
  for (const p of pods(objects)) {
    const want = SERVICES[p.app];
    if (!want) continue;
    const where = ref(target, p.obj);
    const containers = p.spec.containers || [];
    const c = containers.find((x) => x.name === p.app) || containers[0];
    if (!c) continue;
    const cwhere = `${where} container ${c.name}`;

    // Container ports: `admin`, and `http` for the services with a public port; nothing else.
    const expected = [{ name: ADMIN_PORT_NAME, containerPort: want.adminPort }];
    if (want.port !== null) expected.push({ name: 'http', containerPort: want.port });
    const key = (x) => `${x.name}=${x.containerPort}`;
    const got = (c.ports || []).map(key).sort();
    check('services: container ports are `admin` (and `http` for auth and the gateway)', JSON.stringify(got) === JSON.stringify(expected.map(key).sort()), cwhere,
      `ports ${got.join(', ') || '(none)'}, want ${expected.map(key).join(', ')}`);

    // The variables the service listens by. The converter and the notification service serve only ADMIN_PORT (or
    // PORT when ADMIN_PORT is unset); auth and the gateway both.
    const { env } = containerEnv(objects, c);
    const problems = [];
    if (want.port !== null) {
      if (Number(env.get('PORT') || want.port) !== want.port) problems.push(`PORT=${env.get('PORT')}, want ${want.port}`);
      if (Number(env.get('ADMIN_PORT') || want.adminPort) !== want.adminPort) problems.push(`ADMIN_PORT=${env.get('ADMIN_PORT')}, want ${want.adminPort}`);
    } else if (Number(env.get('ADMIN_PORT') || env.get('PORT') || want.adminPort) !== want.adminPort) {
      problems.push(`ADMIN_PORT=${env.get('ADMIN_PORT')} PORT=${env.get('PORT')}, want the admin port ${want.adminPort}`);
    }
    check('services: PORT and ADMIN_PORT match the container ports', problems.length === 0, cwhere, problems.join('; '));

    // Probes on the admin port: the public /readyz gives no reason, and the admin port is what operators watch.
    const rp = (c.readinessProbe || {}).httpGet;
    const lp = (c.livenessProbe || {}).httpGet;
    check('services: readinessProbe is GET /readyz on the admin port', rp && rp.path === '/readyz' && portNumber([c], rp.port) === want.adminPort, cwhere,
      `readinessProbe must be httpGet /readyz on the admin port ${want.adminPort}${rp ? ` (not ${rp.path} on ${rp.port})` : ''}`);
    check('services: livenessProbe is GET /healthz on the admin port', lp && lp.path === '/healthz' && portNumber([c], lp.port) === want.adminPort, cwhere,
      `livenessProbe must be httpGet /healthz on the admin port ${want.adminPort}${lp ? ` (not ${lp.path} on ${lp.port})` : ''}`);
    if (c.startupProbe) {
      check('services: startupProbe is on the admin port', portNumber([c], probePort(c.startupProbe)) === want.adminPort, cwhere,
        `startupProbe on ${probePort(c.startupProbe)}, want the admin port ${want.adminPort}`);
    }

    // Prometheus finds /metrics by the pod template's annotations.
    const wrong = Object.entries(SCRAPE_ANNOTATIONS(want.adminPort)).filter(([k, v]) => p.annotations[k] !== v)
      .map(([k, v]) => `${k} is ${p.annotations[k] === undefined ? 'missing' : JSON.stringify(p.annotations[k])}, want "${v}"`);
    check('services: the pod template has the scrape annotations for the admin port', wrong.length === 0, where, wrong.join('; '));
  }
}

function checkIngressBackends(target, objects) {
  const all = pods(objects);
  for (const ing of byKind(objects, 'Ingress')) {
    const backends = [];
    if ((ing.spec || {}).defaultBackend) backends.push(ing.spec.defaultBackend);
    for (const rule of (ing.spec || {}).rules || []) for (const p of (rule.http || {}).paths || []) backends.push(p.backend);
    for (const b of backends) {
      const s = (b || {}).service;
      const svc = s && find(objects, 'Service', s.name);
      const sp = svc && (svc.spec.ports || []).find((p) => (s.port.name !== undefined ? p.name === s.port.name : p.port === s.port.number));
      if (!sp) continue; // (ingress: backends are existing Services and ports)
      const tp = sp.targetPort === undefined ? sp.port : sp.targetPort;
      const selected = all.filter((p) => labelsMatch({ matchLabels: svc.spec.selector || {} }, p.labels));
      const admin = tp === ADMIN_PORT_NAME || selected.some((p) => portNumber(p.spec.containers || [], tp) === metricsPort(p.app));
      check('ingress: never routes to an admin port', !admin, ref(target, ing),
        `routes to ${s.name}:${JSON.stringify(s.port)}, target port ${tp}: the admin port (/metrics) is for the monitoring namespace only`);
    }
  }
}

function checkMonitoringReach(target, objects) {
  const policies = byKind(objects, 'NetworkPolicy');
  const all = pods(objects);
  for (const p of all) {
    const where = ref(target, p.obj);
    const containers = p.spec.containers || [];
    const own = metricsPort(p.app);
    const { portsBySource } = ingressSources(policies, p, all);
    const monitoring = portsBySource.get(MONITORING_NAMESPACE);
    if (monitoring) {
      // Only admin ports: never auth's 5000 (its internal routes), the gateway's 8080 (the API) or a database.
      const bad = [];
      for (const x of monitoring) {
        if (x === 'all') { bad.push('every port (a rule without ports)'); continue; }
        const n = portNumber(containers, x);
        if (typeof x !== 'number' && Number.isNaN(n)) continue; // a name this pod has not: opens nothing here
        const served = containers.some((c) => (c.ports || []).some((cp) => cp.containerPort === n));
        if (!MONITORING_PORTS.includes(n) || (served && n !== own)) bad.push(String(x));
      }
      check("networkpolicy: the monitoring namespace reaches only admin ports (and RabbitMQ's 15692)", bad.length === 0, where,
        `the monitoring namespace reaches ${bad.join(', ')}: allow only the admin ports ${ADMIN_PORTS.join(', ')} and RabbitMQ's ${RABBITMQ_METRICS_PORTS[0]}`);
      if (own !== null) {
        check("networkpolicy: the monitoring namespace reaches each workload's metrics port", monitoring.some((x) => x === 'all' || portNumber(containers, x) === own), where,
          `the monitoring namespace may reach these pods but not their metrics port ${own}`);
      }
    }
    if (SERVICES[p.app]) {
      for (const [source, ports] of portsBySource) {
        if (source === MONITORING_NAMESPACE) continue;
        const hits = ports.filter((x) => x === 'all' || portNumber(containers, x) === own);
        check('networkpolicy: only the monitoring namespace reaches the admin ports', hits.length === 0, where,
          `${source} reaches the admin port ${own}${hits.includes('all') ? ' (a rule without ports)' : ''}`);
      }
    }
  }
}

function checkAdminPorts(target, objects) {
  checkServicePods(target, objects);
  checkIngressBackends(target, objects);
  checkMonitoringReach(target, objects);
}

module.exports = { checkAdminPorts, checkServicePods, checkIngressBackends, checkMonitoringReach, portNumber };
