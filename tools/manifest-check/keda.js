// Autoscaling: KEDA's ScaledObject scales the converters on the depth of their own queue (components/keda), read
// through RabbitMQ's management API as the broker's read-only user keda; nothing else scales them, and the objects
// these name exist. Part of check.js (tools/manifest-check).
'use strict';

const { NAMESPACE, KEDA, AMQP_USERS, OVERLAY_EXPECTATIONS, check, isObject, ref, amqpUrls } = require('./common');
const { byKind, find, containerEnv, pods, ingressSources } = require('./policy');
const { brokerFiles } = require('./rabbitmq');

// What an autoscaler scales: a ScaledObject's kind defaults to Deployment, an HPA names it.
function scaleTarget(o) {
  const t = (o.spec || {}).scaleTargetRef || {};
  return { kind: t.kind || (o.kind === 'ScaledObject' ? 'Deployment' : undefined), name: t.name };
}
const autoscalers = (objects) => [...byKind(objects, 'HorizontalPodAutoscaler'), ...byKind(objects, 'ScaledObject')];
const isConverter = (t) => t.kind === KEDA.target.kind && t.name === KEDA.target.name;

// The converters' queue and vhost, as their container is configured: VIDEO_QUEUE (default the converter user's only
// queue, `video`) and the path of AMQP_URL (empty or / is the vhost /; of its first URL when it lists a cluster's
// nodes, which all name the same vhost: ha.js).
function converterQueue(objects) {
  const d = find(objects, KEDA.target.kind, KEDA.target.name);
  const c = d && ((d.spec.template.spec.containers || []).find((x) => x.name === 'converter') || d.spec.template.spec.containers[0]);
  const env = c ? containerEnv(objects, c).env : new Map();
  // (The userinfo first: the checker writes a secret's value as <secret NAME/KEY>.)
  const url = /^amqps?:\/\/(?:[^@]*@)?[^/]*(\/.*)?$/.exec(amqpUrls(env.get('AMQP_URL'))[0] || '');
  const path = url && url[1] ? url[1].slice(1) : '';
  return { queue: env.get('VIDEO_QUEUE') || AMQP_USERS.converter.consumes[0], vhost: path === '' ? '/' : decodeURIComponent(path) };
}

// A TriggerAuthentication's parameters: name -> { from: 'secret'|'configmap'|..., name, key, value }.
function authParameters(objects, ta) {
  const out = new Map();
  for (const [field, kind, from] of [['secretTargetRef', 'Secret', 'secret'], ['configMapTargetRef', 'ConfigMap', 'configmap']]) {
    for (const r of (ta.spec || {})[field] || []) {
      const o = r && find(objects, kind, r.name);
      const data = o ? { ...(o.data || {}), ...(o.stringData || {}) } : {};
      out.set(r && r.parameter, { from, name: r && r.name, key: r && r.key, found: !!o, value: from === 'configmap' ? data[r.key] : undefined, hasKey: Object.prototype.hasOwnProperty.call(data, r && r.key) });
    }
  }
  for (const e of (ta.spec || {}).env || []) out.set(e.parameter, { from: 'env', name: e.name });
  return out;
}

function checkTriggerAuthentications(target, objects) {
  for (const ta of byKind(objects, 'TriggerAuthentication')) {
    const problems = [];
    for (const [field, kind] of [['secretTargetRef', 'Secret'], ['configMapTargetRef', 'ConfigMap']]) {
      for (const r of (ta.spec || {})[field] || []) {
        if (!isObject(r) || typeof r.parameter !== 'string' || typeof r.name !== 'string' || typeof r.key !== 'string') {
          problems.push(`${field} ${JSON.stringify(r)}: want parameter, name and key`);
          continue;
        }
        const o = find(objects, kind, r.name);
        if (!o) problems.push(`${field} ${r.parameter}: ${kind} ${r.name} does not exist`);
        else if (!Object.prototype.hasOwnProperty.call({ ...(o.data || {}), ...(o.stringData || {}) }, r.key)) {
          problems.push(`${field} ${r.parameter}: ${kind} ${r.name} has no key ${r.key}`);
        }
      }
    }
    check('references: TriggerAuthentications refer to existing Secrets and ConfigMaps and their keys', problems.length === 0,
      ref(target, ta), problems.join('; '));
  }
}

// The converters' trigger: the depth of their own queue, ready and unacknowledged, from the management API of the
// broker's pod, as the user keda with its password from the Secret.
function checkConverterTrigger(target, objects, so) {
  const where = ref(target, so);
  const want = converterQueue(objects);
  const broker = brokerFiles(objects);
  const sts = broker && broker.sts;
  const ns = (so.metadata || {}).namespace || NAMESPACE;
  const hosts = sts ? [`${sts.metadata.name}-0.${sts.spec.serviceName}.${ns}.svc`, `${sts.metadata.name}-0.${sts.spec.serviceName}.${ns}.svc.cluster.local`] : [];
  const triggers = ((so.spec || {}).triggers || []);
  const rabbit = triggers.filter((t) => t && t.type === 'rabbitmq');
  const rule = "autoscaling: the converters scale on their own queue's depth, read as KEDA's read-only user";
  if (!check(rule, rabbit.length > 0, where, `no rabbitmq trigger (triggers: ${triggers.map((t) => t && t.type).join(', ') || 'none'})`)) return;
  for (const t of rabbit) {
    const m = t.metadata || {};
    const problems = [];
    if (m.queueName !== want.queue) problems.push(`queueName ${m.queueName === undefined ? 'missing' : m.queueName}, want the converters' queue ${want.queue}`);
    if (m.protocol !== 'http') problems.push(`protocol ${m.protocol || 'auto'}: want http, the management API, which counts the jobs being converted (unacknowledged) too`);
    if (String(m.excludeUnacknowledged) === 'true') problems.push('excludeUnacknowledged: the jobs being converted must count');
    if (m.mode !== 'QueueLength' || !/^[1-9][0-9]*$/.test(String(m.value))) problems.push(`mode ${m.mode} value ${m.value}: want QueueLength and a whole number of messages per converter`);
    if (m.queueLength !== undefined || m.useRegex !== undefined) problems.push('queueLength and useRegex: want mode, value and one queue');
    const host = /^http:\/\/([^/:@]+):(\d+)\/$/.exec(String(m.host || ''));
    if (/@/.test(String(m.host || ''))) problems.push('host carries credentials: they belong in the TriggerAuthentication (the Secret)');
    else if (!host || !hosts.includes(host[1]) || Number(host[2]) !== KEDA.port) {
      problems.push(`host ${m.host || 'missing'}: want http://${hosts[0] || 'rabbitmq-0.<headless Service>.<namespace>.svc'}:${KEDA.port}/ (the broker's pod under its headless Service: no Service exposes the management port)`);
    }
    if ((m.vhostName || '/') !== want.vhost) problems.push(`vhostName ${m.vhostName}, want the converters' vhost ${want.vhost}`);
    for (const k of ['hostFromEnv', 'usernameFromEnv', 'passwordFromEnv']) if (m[k] !== undefined) problems.push(`${k}: the converters' environment holds no such thing`);
    // The credentials: the user keda, its password from the Secret key the broker sets it from.
    const aref = t.authenticationRef || {};
    const ta = aref.name && find(objects, aref.kind || 'TriggerAuthentication', aref.name);
    if (!ta) problems.push(`authenticationRef ${aref.name || 'missing'}: no such TriggerAuthentication`);
    else {
      const params = authParameters(objects, ta);
      const user = params.get('username');
      const password = params.get('password');
      if (!user || user.from !== 'configmap' || user.value !== KEDA.user) {
        problems.push(`username ${user ? `from ${user.from} ${user.name}/${user.key}${user.value !== undefined ? ` (${user.value})` : ''}` : 'missing'}: want ${KEDA.user}, from a ConfigMap (it is no secret)`);
      }
      const placeholder = broker && broker.template && ((broker.template.users || []).find((u) => u.name === KEDA.user) || {}).password;
      if (!password || password.from !== 'secret' || `@${password.key}@` !== placeholder) {
        problems.push(`password ${password ? `from ${password.from} ${password.name}/${password.key}` : 'missing'}: want the Secret's ${String(placeholder || `@${KEDA.passwordKey}@`).replace(/@/g, '')}, the key the broker sets ${KEDA.user}'s password from`);
      }
      if (params.has('host')) problems.push('host in the TriggerAuthentication too: one place (the trigger\'s metadata)');
    }
    check(rule, problems.length === 0, where, problems.join('; '));
  }
  // Stopping a converter drains it: one at a time, after a quiet while.
  const spec = so.spec || {};
  const down = ((((spec.advanced || {}).horizontalPodAutoscalerConfig || {}).behavior || {}).scaleDown) || {};
  const policies = down.policies || [];
  const problems = [];
  if (!(down.stabilizationWindowSeconds >= 300)) problems.push(`stabilizationWindowSeconds ${down.stabilizationWindowSeconds}: want at least 300`);
  if (!policies.length || policies.some((p) => p.type !== 'Pods' || p.value !== 1)) problems.push('policies: want type Pods, value 1 (each stop is a drain of a job in progress)');
  const min = spec.minReplicaCount === undefined ? 0 : spec.minReplicaCount;
  if (!(spec.maxReplicaCount >= Math.max(min, 1))) problems.push(`maxReplicaCount ${spec.maxReplicaCount} below minReplicaCount ${min}`);
  check('autoscaling: the converters scale down slowly, one at a time', problems.length === 0, where, problems.join('; '));
}

function checkAutoscaling(target, objects) {
  const byTarget = new Map();
  for (const a of autoscalers(objects)) {
    const t = scaleTarget(a);
    const where = ref(target, a);
    const workload = t.kind && t.name && find(objects, t.kind, t.name);
    if (a.kind === 'ScaledObject') check('references: ScaledObjects target existing workloads', !!workload, where, `${t.kind}/${t.name} does not exist`);
    const key = `${t.kind}/${t.name}`;
    byTarget.set(key, [...(byTarget.get(key) || []), a]);
    if (workload) {
      check('autoscaling: the autoscaler owns the replica count', workload.spec.replicas === undefined, `${target}: ${key}`,
        `spec.replicas is set: every apply would reset what ${a.kind}/${a.metadata.name} chose`);
    }
    if (a.kind === 'ScaledObject') {
      check('autoscaling: ScaledObjects scale the converters', isConverter(t), where,
        `targets ${key}: only the converters are scaled by a queue (the others' load is not one)`);
      if (isConverter(t)) checkConverterTrigger(target, objects, a);
    }
  }
  for (const [key, list] of byTarget) {
    // KEDA makes an HPA of its own: a second autoscaler, on CPU say, would fight it over the same replica count.
    check('autoscaling: one autoscaler per workload (no HPA beside a ScaledObject)', list.length === 1, `${target}: ${key}`,
      `scaled by ${list.map((a) => `${a.kind}/${a.metadata.name}`).join(' and ')}`);
  }
  checkTriggerAuthentications(target, objects);

  if ((OVERLAY_EXPECTATIONS[target] || {}).keda) {
    const so = byKind(objects, 'ScaledObject').filter((o) => isConverter(scaleTarget(o)));
    check(`${target}: KEDA scales the converters on their queue`, so.length === 1, `${target}: Deployment/converter`,
      `${so.length} ScaledObjects target it, want 1 (components/keda)`);
    // KEDA's operator must get through to the management API.
    const broker = pods(objects).filter((p) => p.app === 'rabbitmq');
    for (const p of broker) {
      const { portsBySource } = ingressSources(byKind(objects, 'NetworkPolicy'), p, pods(objects));
      const ports = portsBySource.get(KEDA.source) || [];
      check(`${target}: KEDA's operator reaches RabbitMQ's management API`, ports.includes(KEDA.port) || ports.includes('management'),
        ref(target, p.obj), `no NetworkPolicy admits ${KEDA.source} to ${KEDA.port}`);
    }
  }
}

module.exports = { checkAutoscaling, scaleTarget, converterQueue, authParameters };
