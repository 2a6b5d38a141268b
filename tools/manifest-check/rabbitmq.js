// RabbitMQ users: each service logs in as its own user, whose permissions in the broker's definitions
// (base/rabbitmq-definitions.json, filled with the Secret's passwords by the broker's init container and loaded at
// every boot) are exactly what the service needs; the definitions declare the topology the services expect, and the
// services, told so by AMQP_DECLARE_TOPOLOGY=false, declare none of it themselves.
// Part of check.js (tools/manifest-check).
'use strict';

const path = require('path');
const { SERVICES, AMQP_TOPOLOGY, AMQP_LIVE_QUEUE, AMQP_USERS, KEDA, check, isObject, ref, amqpUrls } = require('./common');
const { byKind, find, containerEnv } = require('./policy');

// Names that no user may reach unless listed: a server-named queue, a second live queue, names close to the real ones.
const PROBE_NAMES = ['amq.gen-JzTY20BRgKO-HjmUJj0wLg', 'amq.topic', 'amq.direct', 'gateway.status.live.x',
  'gateway.status.live.0123456789abc', 'gateway.status.livex0123456789ab', 'video.retry.10s', 'videos', 'xvideo',
  'mp3c.other', 'mp3c.status.x', 'other', 'video.in.x', 'xmp3.in', 'mp3.retryx', 'notification.account.inx',
  'notification.webhook.retry.5', 'gateway.status.in', 'gateway.status.retry'];
// Routing and binding keys tried against the topic permissions on mp3c.status.
const PROBE_TOPICS = ['job.processing', 'job.done', 'job.failed', 'job.cancelled', 'job.queued', 'job.x', 'job.*', 'job.#', '#', '*.*'];

const unique = (list) => [...new Set(list)];
// A user's tags: the definitions allow a list or a comma-separated string.
const tagsOf = (u) => (Array.isArray(u.tags) ? u.tags : String(u.tags || '').split(',').filter(Boolean));
const topologyNames = () => [...AMQP_TOPOLOGY.exchanges.map((e) => e.name), ...AMQP_TOPOLOGY.queues.map((q) => q.name)];
// What each service's user needs (docs/messaging.md, "Users and permissions"): configure on what the service declares
// itself (its own queues: the broker's definitions made the rest); write on the exchanges it publishes to and on its own
// queues that it binds (queue.bind takes write on the queue); read on the queues it consumes and on the exchanges its
// own bindings use (queue.bind takes read on the exchange).
function expectedPermissions(user) {
  const u = AMQP_USERS[user];
  return {
    configure: unique(u.own),
    write: unique([...u.publishes, ...u.binds.map((b) => b.queue)]),
    read: unique([...u.consumes, ...u.binds.map((b) => b.exchange)]),
  };
}

// RabbitMQ matches a permission's regular expression anywhere in the name (Erlang's re:run): as JavaScript does. The
// empty expression is RabbitMQ's synonym for ^$ (nothing), where JavaScript's would match everything.
function matching(pattern, names) {
  let re;
  try {
    re = new RegExp(pattern === '' ? '^$' : pattern);
  } catch {
    return null;
  }
  return names.filter((n) => re.test(n));
}

function difference(want, got) {
  const extra = got.filter((n) => !want.includes(n));
  const missing = want.filter((n) => !got.includes(n));
  return [extra.length ? `also ${extra.join(', ')}` : '', missing.length ? `not ${missing.join(', ')}` : ''].filter(Boolean).join('; ');
}

// The broker's pod: its ConfigMaps' files (by volume), the definitions' path in its configuration, the template.
function brokerFiles(objects) {
  const sts = find(objects, 'StatefulSet', 'rabbitmq');
  if (!sts) return null;
  const spec = sts.spec.template.spec;
  const configMaps = new Map();
  for (const v of spec.volumes || []) {
    const cm = v.configMap && find(objects, 'ConfigMap', v.configMap.name);
    if (cm) configMaps.set(v.name, cm.data || {});
  }
  let loadPath = null;
  let template = null;
  let templateKey = null;
  for (const data of configMaps.values()) {
    for (const [key, value] of Object.entries(data)) {
      const m = /^\s*load_definitions\s*=\s*(\S+)\s*$/m.exec(key.endsWith('.conf') ? value : '');
      if (m) loadPath = m[1];
      if (key.endsWith('.json')) {
        try {
          const parsed = JSON.parse(value);
          if (isObject(parsed) && Array.isArray(parsed.users)) [template, templateKey] = [parsed, key];
        } catch { /* not the definitions */ }
      }
    }
  }
  return { sts, spec, loadPath, template, templateKey };
}

function checkRabbitmqUsers(target, objects) {
  // Each service: AMQP_URL=amqp://<service>:$(RABBITMQ_<SERVICE>_PASSWORD)@..., the password from its own Secret key;
  // every URL of the list when it names a cluster's nodes.
  const keys = new Map();
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    if (!d) continue;
    const containers = d.spec.template.spec.containers || [];
    const c = containers.find((x) => x.name === name) || containers[0];
    const url = String(containerEnv(objects, c).env.get('AMQP_URL') || '');
    const want = `RABBITMQ_${name.toUpperCase()}_PASSWORD`;
    const matches = amqpUrls(url).map((u) => /^amqp:\/\/([^:@/]*):<secret [^/>]+\/([A-Za-z0-9_]+)>@/.exec(u));
    const ok = matches.length > 0 && matches.every((m) => m && m[1] === name && m[2] === want);
    if (ok) keys.set(name, want);
    check('rabbitmq: each service logs in as its own user', ok, ref(target, d),
      `AMQP_URL is ${url || 'unset'}: want amqp://${name}:$(${want})@... (each URL of a list), ${want} from the Secret`);
    // The broker's definitions made the topology, and the service's user may not declare it: the service must not try
    // (libs/amqp declare_topology; a boolean as libs/config reads it).
    const declare = containerEnv(objects, c).env.get('AMQP_DECLARE_TOPOLOGY');
    check('rabbitmq: the services leave the topology to the broker (AMQP_DECLARE_TOPOLOGY=false)',
      typeof declare === 'string' && ['0', 'false', 'no', 'off'].includes(declare.trim().toLowerCase()), ref(target, d),
      `AMQP_DECLARE_TOPOLOGY is ${declare === undefined ? 'unset (on by default)' : `'${declare}'`}: the service would declare the topology, which its user may not (set it to false, in its env or a ConfigMap of its envFrom)`);
  }

  const broker = brokerFiles(objects);
  const where = `${target}: StatefulSet/rabbitmq`;
  if (!broker) return;
  const { spec, loadPath, template, templateKey } = broker;
  // Loaded at boot, from a volume that an init container fills.
  const main = (spec.containers || []).find((c) => c.name === 'rabbitmq') || (spec.containers || [])[0] || {};
  const dir = loadPath ? path.posix.dirname(loadPath) : null;
  const mountOf = (c) => (c.volumeMounts || []).find((m) => dir && (m.mountPath === dir || m.mountPath.replace(/\/$/, '') === dir));
  const mount = mountOf(main);
  const writers = (spec.initContainers || []).filter((c) => {
    const m = mountOf(c);
    return m && mount && m.name === mount.name && !m.readOnly;
  });
  if (!check('rabbitmq: the broker loads its definitions at every boot', !!(loadPath && template && mount && writers.length), where,
    !loadPath ? 'no load_definitions in the rabbitmq ConfigMap\'s .conf'
      : !template ? 'no definitions template (a .json with users) in a ConfigMap the broker mounts'
        : !mount ? `no volume is mounted at ${dir} in the rabbitmq container` : `no init container writes ${dir}`)) return;

  // Passwords: placeholders only, each set by the init container from the Secret key of the same name.
  const setBy = new Map();
  const optional = new Set();
  for (const c of writers) {
    for (const e of c.env || []) {
      const sk = e.valueFrom && e.valueFrom.secretKeyRef;
      if (sk) setBy.set(e.name, sk.key);
      if (sk && sk.optional) optional.add(e.name);
    }
  }
  const users = new Map((template.users || []).map((u) => [u.name, u]));
  for (const u of users.values()) {
    const m = /^@([A-Z0-9_]+)@$/.exec(String(u.password || ''));
    // Only keda's key may be missing (a secrets.env older than it): the init container then makes up a password.
    const missingOk = !m || !optional.has(m[1]) || u.name === KEDA.user;
    check('rabbitmq: the definitions\' passwords come from the Secret', !!m && setBy.get(m[1]) === m[1] && !u.password_hash && missingOk,
      `${where} ${templateKey}: user ${u.name}`,
      !m ? 'a literal password or hash: use a @SECRET_KEY@ placeholder'
        : !missingOk ? `the Secret key ${m[1]} is optional: only ${KEDA.user}'s may be` : `the init container does not set ${m[1]} from the Secret key ${m[1]}`);
  }

  // One user per service, without tags (no management UI), named as in its AMQP_URL and sharing its password's key;
  // an administrator for the management UI that no service logs in as.
  for (const name of Object.keys(SERVICES)) {
    const u = users.get(name);
    const tags = u ? tagsOf(u) : [];
    check('rabbitmq: one user per service, and an administrator no service uses', !!u && tags.length === 0 &&
      (!keys.has(name) || u.password === `@${keys.get(name)}@`), `${where} ${templateKey}: user ${name}`,
    !u ? 'missing' : tags.length ? `tags ${tags.join(',')}: a service needs no management access` : `password ${u.password}, but the Deployment uses ${keys.get(name)}`);
  }
  const admins = [...users.values()].filter((u) => !SERVICES[u.name] && tagsOf(u).includes('administrator'));
  check('rabbitmq: one user per service, and an administrator no service uses', admins.length > 0, `${where} ${templateKey}`,
    'no administrator user for the management UI (a node that loads definitions creates no default user)');
  const others = [...users.values()].filter((u) => !SERVICES[u.name] && u.name !== KEDA.user && !admins.includes(u));
  check("rabbitmq: no user but the services', KEDA's and one administrator", others.length === 0 && admins.length <= 1,
    `${where} ${templateKey}`, others.length ? `users ${others.map((u) => u.name).join(', ')}: no service logs in as them`
      : `administrators ${admins.map((u) => u.name).join(', ')}: one is enough`);

  // KEDA's user (components/keda): the management API shows it the queues' depths; it may publish, read, declare or
  // bind nothing (no permission lets through any name), and it has no topic permission. Its password comes from the
  // Secret like the others' (above).
  const keda = users.get(KEDA.user);
  const kwhere = `${where} ${templateKey}: user ${KEDA.user}`;
  if (check("rabbitmq: KEDA's user reads the management API and nothing else", !!keda, kwhere, 'missing (components/keda reads the queue as it)')) {
    const problems = [];
    const tags = tagsOf(keda);
    if (JSON.stringify([...tags].sort()) !== JSON.stringify(KEDA.tags)) problems.push(`tags ${tags.join(',') || '(none)'}, want ${KEDA.tags.join(',')} (no more: monitoring and administrator see and do more)`);
    const perms = (template.permissions || []).filter((x) => x.user === KEDA.user);
    if (!perms.some((x) => (x.vhost || '/') === '/')) problems.push('no permissions entry on the vhost /: it could not see its queues');
    const everything = unique([...topologyNames(), 'amq.default', AMQP_LIVE_QUEUE, ...PROBE_NAMES]);
    for (const x of perms) {
      for (const kind of ['configure', 'write', 'read']) {
        const got = matching(x[kind], everything);
        if (got === null || got.length) problems.push(`${kind} on ${x.vhost || '/'} ${got === null ? `${x[kind]} is not a regular expression` : `lets through ${got.join(', ')}`}: want ^$`);
      }
    }
    if ((template.topic_permissions || []).some((x) => x.user === KEDA.user)) problems.push('topic permissions: want none');
    check("rabbitmq: KEDA's user reads the management API and nothing else", problems.length === 0, kwhere, problems.join('; '));
  }

  // Least privilege: the names each regular expression lets through, against what the service needs.
  const names = unique([...topologyNames(), 'amq.default', AMQP_LIVE_QUEUE, ...PROBE_NAMES]);
  for (const name of Object.keys(AMQP_USERS)) {
    const p = (template.permissions || []).find((x) => x.user === name && (x.vhost || '/') === '/');
    const pwhere = `${where} ${templateKey}: permissions of ${name}`;
    if (!check('rabbitmq: each service\'s user has least-privilege permissions', !!p, pwhere, 'none on the vhost /')) continue;
    const want = expectedPermissions(name);
    const problems = [];
    for (const kind of ['configure', 'write', 'read']) {
      const got = matching(p[kind], names);
      if (got === null) problems.push(`${kind}: ${p[kind]} is not a regular expression`);
      else if (difference(want[kind], got)) problems.push(`${kind} ${difference(want[kind], got)}`);
    }
    check('rabbitmq: each service\'s user has least-privilege permissions', problems.length === 0, pwhere, problems.join('; '));
  }

  // Status events: a publisher may use only its own routing keys (topic write), and a user may bind to mp3c.status
  // with only the keys of its own bindings (topic read: the gateway's live queue, job.*). Without topic permissions
  // on the exchange RabbitMQ allows every key, so a user that publishes there or binds to it needs them.
  for (const [name, u] of Object.entries(AMQP_USERS)) {
    const tp = (template.topic_permissions || []).find((x) => x.user === name && x.exchange === 'mp3c.status');
    const twhere = `${where} ${templateKey}: topic permissions of ${name} on mp3c.status`;
    const bindKeys = u.binds.filter((b) => b.exchange === 'mp3c.status').map((b) => b.routing_key);
    if (!u.publishes.includes('mp3c.status') && !bindKeys.length && !tp) continue;
    if (!check('rabbitmq: status events carry only their publisher\'s routing keys', !!tp, twhere,
      'none: it may publish any status (write ^job\\.(...)$ with its own keys only)')) continue;
    const problems = [];
    const written = matching(tp.write, PROBE_TOPICS);
    if (written === null || difference(u.topics, written)) problems.push(`write ${written === null ? 'is not a regular expression' : difference(u.topics, written)}`);
    const readable = matching(tp.read, unique([...PROBE_TOPICS, ...bindKeys]));
    if (readable === null || difference(bindKeys, readable)) {
      problems.push(`read ${readable === null ? 'is not a regular expression' : difference(bindKeys, readable)} (only the binding keys of its own queues: ${bindKeys.join(', ') || 'none'})`);
    }
    check('rabbitmq: status events carry only their publisher\'s routing keys', problems.length === 0, twhere, problems.join('; '));
  }

  // The topology, declared up front: a service's user may not create what is missing (and RabbitMQ refuses a
  // redeclaration with other arguments, so these must be what declare_topology declares where it still does: the
  // tests, and a broker without these definitions).
  const twhere = `${where} ${templateKey}`;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const sorted = (o) => Object.fromEntries(Object.entries(o || {}).sort(([a], [b]) => a.localeCompare(b)));
  const problems = [];
  const exchanges = new Map((template.exchanges || []).map((e) => [e.name, e]));
  for (const e of AMQP_TOPOLOGY.exchanges) {
    const got = exchanges.get(e.name);
    if (!got || got.type !== e.type || got.durable !== true || got.auto_delete || got.internal || Object.keys(got.arguments || {}).length) {
      problems.push(`exchange ${e.name} (${e.type}, durable, no arguments) ${got ? 'differs' : 'is missing'}`);
    }
  }
  const queues = new Map((template.queues || []).map((q) => [q.name, q]));
  for (const q of AMQP_TOPOLOGY.queues) {
    const got = queues.get(q.name);
    if (!got || got.durable !== true || got.auto_delete || !same(sorted(got.arguments), sorted(q.arguments))) {
      problems.push(`queue ${q.name} (durable, ${JSON.stringify(q.arguments)}) ${got ? 'differs' : 'is missing'}`);
    }
  }
  // Every binding counts, exchange-to-exchange ones too: one from mp3.in to notification.account.in would let the
  // converter's messages reach account mails.
  const bindingKey = (b) => `${b.source} -> ${(b.destination_type || 'queue') === 'queue' ? '' : `${b.destination_type} `}${b.destination} (${b.routing_key})`;
  const bindings = (template.bindings || []).map(bindingKey);
  const wantBindings = AMQP_TOPOLOGY.bindings.map(bindingKey);
  if (difference(wantBindings, bindings)) problems.push(`bindings: ${difference(wantBindings, bindings)}`);
  const extra = [...exchanges.keys(), ...queues.keys()].filter((n) => !topologyNames().includes(n));
  if (extra.length) problems.push(`not the services': ${extra.join(', ')}`);
  const vhosts = [...(template.exchanges || []), ...(template.queues || []), ...(template.bindings || []), ...(template.permissions || [])]
    .filter((x) => (x.vhost || '/') !== '/');
  if (vhosts.length) problems.push('everything is in the vhost / (the services\' AMQP_URL)');
  check('rabbitmq: the definitions declare the services\' topology', problems.length === 0, twhere, problems.join('; '));
}

module.exports = { checkRabbitmqUsers, expectedPermissions, brokerFiles };
