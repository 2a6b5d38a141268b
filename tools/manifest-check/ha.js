// High availability (issue 22; components/ha, in overlays/production): RabbitMQ, MongoDB and MariaDB as three members
// each, never two on one Kubernetes node, each able to lose one member; the services pointed at every member; the
// stateless Deployments spread over nodes. And, for every rendering (the definitions are shared): every durable queue
// is a quorum queue, and only RabbitMQ's container gets a Kubernetes API token.
// Part of check.js (tools/manifest-check).
'use strict';

const path = require('path');
const { NAMESPACE, HA, AMQP_QUEUE_TYPE, AMQP_AT_LEAST_ONCE, OVERLAY_EXPECTATIONS, SERVICES, check, ref, labelsMatch, amqpUrls } = require('./common');
const { byKind, find, containerEnv, pods, ingressSources, egressPolicies, egressReached } = require('./policy');
const { brokerFiles } = require('./rabbitmq');

const RULES = {
  quorum: 'rabbitmq: every durable queue is a quorum queue that dead-letters at least once',
  token: "pods: only RabbitMQ's container gets a Kubernetes API token",
  replicas: `ha: RabbitMQ, MongoDB and MariaDB have ${HA.replicas} replicas`,
  antiAffinity: `ha: never two members on one node (required pod anti-affinity on ${HA.hostKey})`,
  zones: `ha: the members spread over zones (topologySpreadConstraints on ${HA.zoneKey})`,
  pdb: 'ha: a PodDisruptionBudget of maxUnavailable 1 for each replicated StatefulSet',
  parallel: 'ha: the members start together (podManagementPolicy Parallel)',
  peers: 'ha: the members reach one another (NetworkPolicy, both ways)',
  deployments: `ha: every Deployment spreads its replicas over nodes (topologySpreadConstraints on ${HA.hostKey})`,
  amqp: "ha: each service's AMQP_URL lists every RabbitMQ node",
  storage: 'ha: STORAGE_URL names the MongoDB replica set (every member, majority writes, primary reads)',
  rabbitmq: "ha: RabbitMQ's nodes form one cluster (Kubernetes peer discovery by hostname, pause_minority)",
  mongodb: 'ha: MongoDB is a replica set with internal authentication, initiated by a Job',
  galera: 'ha: MariaDB is a Galera cluster of its nodes, ready only when in sync',
  mysqlHost: 'ha: MYSQL_HOST lists every MariaDB node (or names the Service of the nodes in sync)',
};

const podOf = (objects, sts) => pods(objects).find((p) => p.obj === sts);
const templateLabels = (o) => ((o.spec.template || {}).metadata || {}).labels || {};
const mainContainer = (sts, name) => {
  const containers = sts.spec.template.spec.containers || [];
  return containers.find((c) => c.name === name) || containers[0] || {};
};
// The pod names of a StatefulSet's members under its headless Service: NAME-i.SERVICE.NAMESPACE.svc.cluster.local
// (or the shorter NAME-i.SERVICE.NAMESPACE.svc).
function memberHosts(sts) {
  const ns = sts.metadata.namespace || NAMESPACE;
  return Array.from({ length: HA.replicas }, (_, i) => `${sts.metadata.name}-${i}.${sts.spec.serviceName}.${ns}.svc`);
}
const sameHost = (got, want) => got === want || got === `${want}.cluster.local`;

// The files of the ConfigMaps a container mounts: [{ mountPath, key, text }], each file where the container sees it.
function mountedFiles(objects, spec, container) {
  const out = [];
  for (const m of container.volumeMounts || []) {
    const v = (spec.volumes || []).find((x) => x.name === m.name);
    const cm = v && v.configMap && find(objects, 'ConfigMap', v.configMap.name);
    if (!cm) continue;
    const items = v.configMap.items ? v.configMap.items.map((i) => [i.key, i.path]) : Object.keys(cm.data || {}).map((k) => [k, k]);
    for (const [key, file] of items) {
      if (m.subPath !== undefined && m.subPath !== file) continue;
      out.push({ path: m.subPath !== undefined ? m.mountPath : path.posix.join(m.mountPath, file), key, text: (cm.data || {})[key] || '' });
    }
  }
  return out;
}
// `key = value` lines (rabbitmq.conf, my.cnf), the later winning; sections and comments ignored. Keys lowercased.
function settings(texts) {
  const out = new Map();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/.exec(line);
      if (m && !/^\s*[#;]/.test(line)) out.set(m[1].toLowerCase().replace(/-/g, '_'), m[2].replace(/^"(.*)"$/, '$1'));
    }
  }
  return out;
}

function checkQuorumQueues(target, objects) {
  const broker = brokerFiles(objects);
  if (!broker || !broker.template) return;
  const problems = [];
  for (const q of broker.template.queues || []) {
    if (q.durable !== true) continue;
    const a = q.arguments || {};
    if (a['x-queue-type'] !== AMQP_QUEUE_TYPE) {
      problems.push(`${q.name}: x-queue-type ${a['x-queue-type'] === undefined ? 'unset (classic)' : a['x-queue-type']}`);
    } else if (a['x-dead-letter-exchange'] !== undefined) {
      const missing = Object.entries(AMQP_AT_LEAST_ONCE).filter(([k, v]) => a[k] !== v).map(([k, v]) => `${k} ${v}`);
      if (missing.length) problems.push(`${q.name}: dead-letters without ${missing.join(', ')} (so at most once)`);
    }
  }
  check(RULES.quorum, problems.length === 0, `${target}: StatefulSet/rabbitmq ${broker.templateKey}`,
    `${problems.join('; ')}: want x-queue-type ${AMQP_QUEUE_TYPE} on every durable queue (replicated on a cluster's nodes), and at-least-once dead-lettering where it dead-letters`);
}

// A Kubernetes API token (a projected serviceAccountToken, or the automounted one) only in RabbitMQ's container, which
// reads its peers from the API (components/ha); never in another pod, nor in RabbitMQ's init containers.
function checkTokens(target, objects) {
  for (const p of pods(objects)) {
    const tokenVolumes = (p.spec.volumes || []).filter((v) => v.projected && (v.projected.sources || []).some((s) => s.serviceAccountToken))
      .map((v) => v.name);
    if (!tokenVolumes.length) continue;
    const holders = [...(p.spec.initContainers || []), ...(p.spec.containers || [])]
      .filter((c) => (c.volumeMounts || []).some((m) => tokenVolumes.includes(m.name))).map((c) => c.name);
    check(RULES.token, p.app === 'rabbitmq' && holders.length > 0 && holders.every((n) => n === 'rabbitmq'), ref(target, p.obj),
      `volume ${tokenVolumes.join(', ')} carries a service account token, mounted by ${holders.join(', ') || 'no container'}: only the rabbitmq container (peer discovery) may have one`);
  }
}

function checkStatefulSet(target, objects, name) {
  const sts = find(objects, 'StatefulSet', name);
  if (!sts) return null; // (statefulsets: MySQL, MongoDB and RabbitMQ are StatefulSets)
  const where = ref(target, sts);
  const labels = templateLabels(sts);
  const spec = sts.spec.template.spec;
  check(RULES.replicas, sts.spec.replicas === HA.replicas, where, `replicas ${sts.spec.replicas}, want ${HA.replicas}: one member may be lost and a majority remains`);
  const terms = (((spec.affinity || {}).podAntiAffinity || {}).requiredDuringSchedulingIgnoredDuringExecution) || [];
  check(RULES.antiAffinity, terms.some((t) => t.topologyKey === HA.hostKey && labelsMatch(t.labelSelector, labels)), where,
    `no requiredDuringSchedulingIgnoredDuringExecution term on ${HA.hostKey} selecting its own pods: two members on one node would be lost together`);
  check(RULES.zones, (spec.topologySpreadConstraints || []).some((c) => c.topologyKey === HA.zoneKey && labelsMatch(c.labelSelector, labels)), where,
    `no topologySpreadConstraint on ${HA.zoneKey} selecting its own pods`);
  const pdbs = byKind(objects, 'PodDisruptionBudget').filter((b) => labelsMatch((b.spec || {}).selector, labels));
  check(RULES.pdb, pdbs.length === 1 && String(pdbs[0].spec.maxUnavailable) === '1' && pdbs[0].spec.minAvailable === undefined, where,
    pdbs.length === 0 ? 'no PodDisruptionBudget selects its pods: a drain may stop two members at once'
      : `${pdbs.map((b) => `PodDisruptionBudget/${b.metadata.name} (maxUnavailable ${b.spec.maxUnavailable}, minAvailable ${b.spec.minAvailable})`).join(', ')}: want one, maxUnavailable 1`);
  check(RULES.parallel, sts.spec.podManagementPolicy === 'Parallel', where,
    `podManagementPolicy ${sts.spec.podManagementPolicy || 'OrderedReady (the default)'}: a member waits for its peers before it is ready, so ordered starts deadlock`);
  // The members' own traffic, both ways.
  const p = podOf(objects, sts);
  if (p) {
    const policies = byKind(objects, 'NetworkPolicy');
    const all = pods(objects);
    const reached = egressReached(egressPolicies(policies, p.labels), all);
    const admitted = (ingressSources(policies, p, all).portsBySource.get(name) || []).map(String);
    const missing = [];
    for (const peer of HA.statefulSets[name].peers) {
      const port = peer.slice(peer.indexOf(':') + 1, peer.indexOf('/'));
      if (!reached.has(peer)) missing.push(`egress to ${peer}`);
      if (!admitted.includes(port) && !admitted.includes('all')) missing.push(`ingress from ${name} on ${port}`);
    }
    check(RULES.peers, missing.length === 0, where, `no ${missing.join(', ')}`);
  }
  return sts;
}

function checkDeployments(target, objects) {
  for (const d of byKind(objects, 'Deployment')) {
    const labels = templateLabels(d);
    const ok = (d.spec.template.spec.topologySpreadConstraints || []).some((c) => c.topologyKey === HA.hostKey && labelsMatch(c.labelSelector, labels));
    check(RULES.deployments, ok, ref(target, d), `no topologySpreadConstraint on ${HA.hostKey} selecting its own pods: its replicas may all land on one node`);
  }
}

// Each service's AMQP_URL: one URL per RabbitMQ node, by the node's pod name, all with the same user and vhost.
function checkAmqpUrls(target, objects, rabbit) {
  const want = memberHosts(rabbit);
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    if (!d) continue;
    const c = mainContainer(d, name);
    const value = containerEnv(objects, c).env.get('AMQP_URL') || '';
    const urls = amqpUrls(value).map((u) => /^amqp:\/\/([^@]*)@([^/:@]+):(\d+)(\/[^,]*)?$/.exec(u));
    const problems = [];
    if (urls.some((m) => !m)) problems.push('a URL is not amqp://user:password@host:port/vhost');
    else {
      const hosts = urls.map((m) => m[2]);
      const missing = want.filter((h) => !hosts.some((x) => sameHost(x, h)));
      const extra = hosts.filter((x) => !want.some((h) => sameHost(x, h)));
      if (missing.length) problems.push(`no URL for ${missing.join(', ')}`);
      if (extra.length) problems.push(`${extra.join(', ')} is not a node's own name`);
      if (new Set(hosts).size !== hosts.length) problems.push('a node is listed twice');
      if (urls.some((m) => Number(m[3]) !== HA.amqpPort)) problems.push(`a port other than ${HA.amqpPort}`);
      if (new Set(urls.map((m) => m[1])).size > 1 || new Set(urls.map((m) => m[4] || '/')).size > 1) problems.push('the URLs differ in user, password or vhost');
    }
    check(RULES.amqp, problems.length === 0, ref(target, d),
      `AMQP_URL ${value || 'unset'}: ${problems.join('; ')} (want amqp://${name}:...@${want[0]}.cluster.local:${HA.amqpPort}/,... one URL per node, comma-separated)`);
  }
}

// STORAGE_URL (the gateway, the converters): the replica set by name and every member, majority-acknowledged journaled
// writes (an acknowledged upload survives the primary's loss), reads from the primary (a download right after an upload
// sees it), retried writes and reads across an election.
function checkStorageUrls(target, objects, mongo) {
  const args = mainContainer(mongo, 'mongodb').args || [];
  const setName = args.includes('--replSet') ? args[args.indexOf('--replSet') + 1] : null;
  const want = memberHosts(mongo);
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    if (!d) continue;
    const value = containerEnv(objects, mainContainer(d, name)).env.get('STORAGE_URL');
    if (!value || !value.startsWith('mongodb://')) continue;
    // (The userinfo may hold anything but @: the checker writes a secret as <secret NAME/KEY>.)
    const m = /^mongodb:\/\/(?:[^@]*@)?([^@/?]+)(\/[^?]*)?(?:\?(.*))?$/.exec(value);
    const problems = [];
    if (!m) problems.push('not mongodb://[user:password@]host:port,.../[database][?options]');
    else {
      const hosts = m[1].split(',').map((x) => {
        const hp = /^([^:]+)(?::(\d+))?$/.exec(x);
        return hp ? { host: hp[1], port: Number(hp[2] || HA.mongoPort) } : { host: x, port: NaN };
      });
      const missing = want.filter((h) => !hosts.some((x) => sameHost(x.host, h) && x.port === HA.mongoPort));
      if (missing.length) problems.push(`not every member: ${missing.join(', ')} missing`);
      if (hosts.length !== want.length) problems.push(`${hosts.length} hosts, want the ${want.length} members`);
      const options = new Map((m[3] || '').split('&').filter(Boolean).map((kv) => [kv.split('=')[0].toLowerCase(), decodeURIComponent(kv.slice(kv.indexOf('=') + 1))]));
      if (!setName || options.get('replicaset') !== setName) problems.push(`replicaSet=${options.get('replicaset') || '(none)'}, want mongod's --replSet ${setName || '(none: mongod is not a replica set member)'}`);
      for (const [k, v] of Object.entries(HA.storageOptions)) {
        if ((options.get(k.toLowerCase()) || '').toLowerCase() !== v.toLowerCase()) problems.push(`${k}=${options.get(k.toLowerCase()) || '(unset)'}, want ${v}`);
      }
    }
    check(RULES.storage, problems.length === 0, ref(target, d), `STORAGE_URL ${value}: ${problems.join('; ')}`);
  }
}

function checkRabbitmqCluster(target, objects, sts) {
  const where = ref(target, sts);
  const spec = sts.spec.template.spec;
  const c = mainContainer(sts, 'rabbitmq');
  const ns = sts.metadata.namespace || NAMESPACE;
  const svc = sts.spec.serviceName;
  const files = mountedFiles(objects, spec, c);
  const conf = settings(files.filter((f) => f.path.startsWith('/etc/rabbitmq/conf.d/') || f.path === '/etc/rabbitmq/rabbitmq.conf').map((f) => f.text));
  const problems = [];
  const want = {
    'cluster_formation.peer_discovery_backend': ['k8s', 'kubernetes', 'rabbit_peer_discovery_k8s'],
    'cluster_formation.k8s.address_type': ['hostname'],
    'cluster_formation.k8s.service_name': [svc],
    'cluster_formation.k8s.hostname_suffix': [`.${svc}.${ns}.svc.cluster.local`],
    'cluster_formation.node_cleanup.only_log_warning': ['true'],
    cluster_partition_handling: ['pause_minority'],
  };
  for (const [k, values] of Object.entries(want)) {
    if (!values.includes(conf.get(k))) problems.push(`${k} = ${conf.get(k) || '(unset)'}, want ${values.join(' or ')}`);
  }
  const plugins = files.find((f) => f.path === '/etc/rabbitmq/enabled_plugins');
  if (!plugins || !/\brabbitmq_peer_discovery_k8s\b/.test(plugins.text)) problems.push('rabbitmq_peer_discovery_k8s is not in a mounted /etc/rabbitmq/enabled_plugins');
  // Node names as peer discovery computes them: rabbit@<pod>.<headless Service>.<namespace>.svc.cluster.local.
  const env = new Map((c.env || []).map((e) => [e.name, e]));
  const fromField = (v, field) => env.has(v) && ((env.get(v).valueFrom || {}).fieldRef || {}).fieldPath === field;
  if (((env.get('RABBITMQ_USE_LONGNAME') || {}).value || '') !== 'true') problems.push('RABBITMQ_USE_LONGNAME is not "true"');
  const node = /^rabbit@\$\(([A-Za-z_][A-Za-z0-9_]*)\)\.([^.]+)\.(?:\$\(([A-Za-z_][A-Za-z0-9_]*)\)|([^.]+))\.svc\.cluster\.local$/.exec((env.get('RABBITMQ_NODENAME') || {}).value || '');
  if (!node || !fromField(node[1], 'metadata.name') || node[2] !== svc || (node[3] ? !fromField(node[3], 'metadata.namespace') : node[4] !== ns)) {
    problems.push(`RABBITMQ_NODENAME ${(env.get('RABBITMQ_NODENAME') || {}).value || '(unset)'}: want rabbit@$(POD_NAME).${svc}.$(POD_NAMESPACE).svc.cluster.local, POD_NAME and POD_NAMESPACE from the pod's fields`);
  }
  // The API: a service account that may read the Service's endpoints, and a way there.
  const sa = spec.serviceAccountName;
  const roles = byKind(objects, 'RoleBinding').filter((b) => (b.subjects || []).some((s) => s.kind === 'ServiceAccount' && s.name === sa))
    .map((b) => b.roleRef && b.roleRef.kind === 'Role' && find(objects, 'Role', b.roleRef.name)).filter(Boolean);
  const readsEndpoints = roles.some((r) => (r.rules || []).some((rule) => (rule.apiGroups || []).includes('') && (rule.resources || []).includes('endpoints') &&
    (rule.verbs || []).includes('get') && (!rule.resourceNames || rule.resourceNames.includes(svc))));
  if (!sa || !find(objects, 'ServiceAccount', sa) || !readsEndpoints) problems.push(`service account ${sa || '(none)'}: want one bound to a Role that may get the endpoints of ${svc}`);
  const wider = roles.flatMap((r) => r.rules || []).filter((rule) => (rule.resources || []).some((x) => x !== 'endpoints') || (rule.verbs || []).some((v) => !['get', 'list', 'watch'].includes(v)));
  if (wider.length) problems.push(`its Role allows ${wider.map((r) => `${(r.verbs || []).join(',')} ${(r.resources || []).join(',')}`).join('; ')}: peer discovery reads endpoints only`);
  if (!(c.volumeMounts || []).some((m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount')) problems.push('no token mounted at /var/run/secrets/kubernetes.io/serviceaccount in the rabbitmq container');
  const p = podOf(objects, sts);
  const reached = p ? egressReached(egressPolicies(byKind(objects, 'NetworkPolicy'), p.labels), pods(objects)) : new Set();
  if (![...reached].some((x) => x.startsWith('kubernetes-api:'))) problems.push('no NetworkPolicy lets it reach the Kubernetes API (rabbitmq-kubernetes-api)');
  check(RULES.rabbitmq, problems.length === 0, where, problems.join('; '));
}

function checkMongodbReplicaSet(target, objects, sts) {
  const c = mainContainer(sts, 'mongodb');
  const args = c.args || [];
  const value = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const setName = value('--replSet');
  const keyFile = value('--keyFile');
  const problems = [];
  if (!setName) problems.push('mongod has no --replSet');
  if (!keyFile) problems.push('mongod has no --keyFile: any client reaching 27017 could join the set');
  else if (!(c.volumeMounts || []).some((m) => keyFile.startsWith(m.mountPath.replace(/\/?$/, '/')))) problems.push(`--keyFile ${keyFile} is on no mounted volume`);
  const initiators = byKind(objects, 'Job').filter((j) => (j.spec.template.spec.containers || [])
    .some((x) => (x.env || []).some((e) => e.name === 'MONGODB_REPLICA_SET' && e.value === setName)));
  if (setName && !initiators.length) problems.push(`no Job initiates the set (a container with MONGODB_REPLICA_SET=${setName})`);
  check(RULES.mongodb, problems.length === 0, ref(target, sts), problems.join('; '));
}

function checkGalera(target, objects, sts) {
  const spec = sts.spec.template.spec;
  const c = mainContainer(sts, 'mariadb');
  const files = mountedFiles(objects, spec, c);
  const cnf = settings(files.filter((f) => /^\/etc\/mysql\/.*\.cnf$/.test(f.path)).map((f) => f.text));
  const problems = [];
  const want = { wsrep_on: 'on', binlog_format: 'row', default_storage_engine: 'innodb', innodb_autoinc_lock_mode: '2' };
  for (const [k, v] of Object.entries(want)) if ((cnf.get(k) || '').toLowerCase() !== v) problems.push(`${k} = ${cnf.get(k) || '(unset)'}, want ${v}`);
  if (!cnf.get('wsrep_provider') || cnf.get('wsrep_provider') === 'none') problems.push('no wsrep_provider');
  if (!['mariabackup', 'rsync'].includes(cnf.get('wsrep_sst_method'))) problems.push(`wsrep_sst_method = ${cnf.get('wsrep_sst_method') || '(unset)'}, want mariabackup or rsync`);
  const address = /^gcomm:\/\/(.*)$/.exec(cnf.get('wsrep_cluster_address') || '');
  const nodes = address ? address[1].split(',').filter(Boolean).map((h) => h.replace(/:\d+$/, '')) : [];
  const missing = memberHosts(sts).filter((h) => !nodes.some((x) => sameHost(x, h)));
  if (!address || missing.length) problems.push(`wsrep_cluster_address ${cnf.get('wsrep_cluster_address') || '(unset)'}: want gcomm:// with every node${missing.length ? ` (${missing.join(', ')} missing)` : ''}`);
  // Ready only in sync: the probe's command, or a mounted script it runs, asks for wsrep_local_state_comment Synced.
  const command = (((c.readinessProbe || {}).exec || {}).command || []);
  const text = [command.join(' '), ...files.filter((f) => command.includes(f.path)).map((f) => f.text)].join('\n');
  if (!/wsrep_local_state_comment/.test(text) || !/Synced/.test(text)) problems.push('the readiness probe does not ask for wsrep_local_state_comment Synced: a joining or cut-off node would take connections');
  check(RULES.galera, problems.length === 0, ref(target, sts), problems.join('; '));

  // The services with a database: the nodes in order (libs/mysql connects to the first that is ready), or the Service
  // whose endpoints are the nodes in sync.
  const labels = templateLabels(sts);
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    if (!d) continue;
    const host = containerEnv(objects, mainContainer(d, name)).env.get('MYSQL_HOST');
    if (host === undefined) continue;
    const svc = find(objects, 'Service', host);
    const viaService = !!svc && labelsMatch({ matchLabels: (svc.spec || {}).selector || {} }, labels) && svc.spec.clusterIP !== 'None';
    const listed = String(host).split(',').map((h) => h.trim().replace(/:3306$/, ''));
    const missing = memberHosts(sts).filter((h) => !listed.some((x) => sameHost(x, h)));
    check(RULES.mysqlHost, viaService || missing.length === 0, ref(target, d),
      `MYSQL_HOST=${host}: ${missing.length ? `${missing.join(', ')} missing` : 'not the nodes'}; a lost node would leave the service without its database`);
  }
}

function checkHighAvailability(target, objects) {
  checkQuorumQueues(target, objects);
  checkTokens(target, objects);
  if (!(OVERLAY_EXPECTATIONS[target] || {}).ha) return;
  const sts = {};
  for (const name of Object.keys(HA.statefulSets)) sts[name] = checkStatefulSet(target, objects, name);
  checkDeployments(target, objects);
  if (sts.rabbitmq) {
    checkAmqpUrls(target, objects, sts.rabbitmq);
    checkRabbitmqCluster(target, objects, sts.rabbitmq);
  }
  if (sts.mongodb) {
    checkStorageUrls(target, objects, sts.mongodb);
    checkMongodbReplicaSet(target, objects, sts.mongodb);
  }
  if (sts.mysql) checkGalera(target, objects, sts.mysql);
}

module.exports = { RULES, checkHighAvailability, checkQuorumQueues, checkTokens, mountedFiles, settings };
