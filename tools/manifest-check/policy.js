// 2. Policy: the rules of docs/operations.md ("What scripts/check-manifests checks") on the rendered objects.
// Part of check.js (tools/manifest-check).
'use strict';

const path = require('path');
const { NAMESPACE, APP_LABEL, SERVICES, STATEFUL, INGRESS_SOURCES, EGRESS_DESTINATIONS, DNS_EGRESS, PRIVATE_RANGES, ipBlockReaches, parseCidr, KUBERNETES_API, RABBITMQ_MANAGEMENT_PORTS, KEDA, MIN_BODY_BYTES, MIN_PROXY_TIMEOUT_SECONDS, POD_KINDS, OVERLAY_EXPECTATIONS, check, isObject, ref, labelsMatch, selectorIsEmpty, parseQuantity, parseDuration, parseNginxSize, podSpecOf } = require('./common');

function byKind(objects, kind) { return objects.filter((o) => o.kind === kind); }
function find(objects, kind, name) { return objects.find((o) => o.kind === kind && o.metadata && o.metadata.name === name); }

// A container's environment as the kubelet builds it: envFrom in order, then env, expanding $(VAR).
function containerEnv(objects, container) {
  const env = new Map();
  const problems = [];
  for (const source of container.envFrom || []) {
    const prefix = source.prefix || '';
    if (source.configMapRef) {
      const cm = find(objects, 'ConfigMap', source.configMapRef.name);
      if (!cm) { if (!source.configMapRef.optional) problems.push(`envFrom ConfigMap ${source.configMapRef.name} does not exist`); continue; }
      for (const [k, v] of Object.entries(cm.data || {})) env.set(prefix + k, v);
    } else if (source.secretRef) {
      const s = find(objects, 'Secret', source.secretRef.name);
      if (!s) { if (!source.secretRef.optional) problems.push(`envFrom Secret ${source.secretRef.name} does not exist`); continue; }
      for (const k of Object.keys({ ...(s.data || {}), ...(s.stringData || {}) })) env.set(prefix + k, `<secret ${s.metadata.name}/${k}>`);
    }
  }
  for (const e of container.env || []) {
    if (e.valueFrom) {
      const sk = e.valueFrom.secretKeyRef;
      const ck = e.valueFrom.configMapKeyRef;
      if (sk) {
        const s = find(objects, 'Secret', sk.name);
        if (!s) { if (!sk.optional) problems.push(`${e.name}: Secret ${sk.name} does not exist`); }
        else if (!((s.data || {})[sk.key] !== undefined || (s.stringData || {})[sk.key] !== undefined) && !sk.optional) {
          problems.push(`${e.name}: Secret ${sk.name} has no key ${sk.key}`);
        }
        env.set(e.name, `<secret ${sk.name}/${sk.key}>`);
      } else if (ck) {
        const cm = find(objects, 'ConfigMap', ck.name);
        if (!cm) { if (!ck.optional) problems.push(`${e.name}: ConfigMap ${ck.name} does not exist`); }
        else if ((cm.data || {})[ck.key] === undefined && !ck.optional) problems.push(`${e.name}: ConfigMap ${ck.name} has no key ${ck.key}`);
        env.set(e.name, cm && cm.data ? cm.data[ck.key] : undefined);
      } else {
        env.set(e.name, '<from the pod>');
      }
      continue;
    }
    const value = String(e.value === undefined ? '' : e.value).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name) => {
      if (!name) return '$';
      if (!env.has(name)) { problems.push(`${e.name}: $(${name}) is not defined before it`); return all; }
      return env.get(name);
    });
    env.set(e.name, value);
  }
  return { env, problems };
}

function checkPods(target, objects) {
  for (const obj of objects.filter((o) => POD_KINDS.includes(o.kind))) {
    const where = ref(target, obj);
    const { spec, labels } = podSpecOf(obj);
    if (!check('pods: have a pod template', isObject(spec), where, 'no pod spec')) continue;
    const app = (labels || {})[APP_LABEL];
    const podSc = spec.securityContext || {};
    const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
    for (const vct of obj.kind === 'StatefulSet' ? (obj.spec.volumeClaimTemplates || []) : []) {
      volumes.set(vct.metadata.name, { name: vct.metadata.name, persistentVolumeClaim: {} });
    }
    check('pods: automountServiceAccountToken is false', spec.automountServiceAccountToken === false, where,
      'the pods need no Kubernetes API token: set automountServiceAccountToken: false');
    check('pods: enableServiceLinks is false', spec.enableServiceLinks === false, where,
      'service links put MYSQL_PORT=tcp://..., RABBITMQ_PORT=... into the environment, which the services and RabbitMQ read');
    check('pods: hostNetwork, hostPID and hostIPC are off', !spec.hostNetwork && !spec.hostPID && !spec.hostIPC, where,
      'uses the node\'s namespaces');
    check('pods: terminationGracePeriodSeconds is set', Number.isInteger(spec.terminationGracePeriodSeconds), where,
      'no terminationGracePeriodSeconds');
    const tmp = [...volumes.values()].filter((v) => v.emptyDir);
    const all = [...(spec.initContainers || []).map((c) => ({ c, init: true })), ...(spec.containers || []).map((c) => ({ c, init: false }))];

    // Volumes: what they refer to exists.
    for (const v of volumes.values()) {
      if (v.configMap) {
        const cm = find(objects, 'ConfigMap', v.configMap.name);
        if (check('references: volumes refer to existing ConfigMaps and Secrets and their keys', cm || v.configMap.optional, where, `volume ${v.name}: ConfigMap ${v.configMap.name} does not exist`) && cm) {
          for (const item of v.configMap.items || []) {
            check('references: volumes refer to existing ConfigMaps and Secrets and their keys', (cm.data || {})[item.key] !== undefined, where, `volume ${v.name}: ConfigMap ${cm.metadata.name} has no key ${item.key}`);
          }
        }
      }
      if (v.secret) {
        const s = find(objects, 'Secret', v.secret.secretName);
        if (check('references: volumes refer to existing ConfigMaps and Secrets and their keys', s || v.secret.optional, where, `volume ${v.name}: Secret ${v.secret.secretName} does not exist`) && s) {
          for (const item of v.secret.items || []) {
            check('references: volumes refer to existing ConfigMaps and Secrets and their keys', (s.data || {})[item.key] !== undefined, where, `volume ${v.name}: Secret ${s.metadata.name} has no key ${item.key}`);
          }
        }
      }
    }

    for (const { c, init } of all) {
      const cwhere = `${where} container ${c.name}`;
      const sc = c.securityContext || {};
      // Probes (not for init containers, nor a Job's containers: they run to completion, and nothing routes to them).
      if (!init && !['Job', 'CronJob'].includes(obj.kind)) {
        check('containers: have a readinessProbe', isObject(c.readinessProbe), cwhere, 'no readinessProbe');
        check('containers: have a livenessProbe', isObject(c.livenessProbe), cwhere, 'no livenessProbe');
      }
      // Resources.
      const res = c.resources || {};
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) {
          check(`containers: resources.${kind} for cpu and memory`, (res[kind] || {})[r] !== undefined, cwhere, `no resources.${kind}.${r}`);
        }
      }
      for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
        const rq = (res.requests || {})[r];
        const lm = (res.limits || {})[r];
        // (A malformed quantity is the schema's failure, not this one's.)
        if (rq !== undefined && lm !== undefined && !Number.isNaN(parseQuantity(rq)) && !Number.isNaN(parseQuantity(lm))) {
          check('containers: requests are within limits', parseQuantity(rq) <= parseQuantity(lm), cwhere, `requests.${r} ${rq} > limits.${r} ${lm}`);
        }
      }
      // Security context.
      const runAsNonRoot = sc.runAsNonRoot !== undefined ? sc.runAsNonRoot : podSc.runAsNonRoot;
      const runAsUser = sc.runAsUser !== undefined ? sc.runAsUser : podSc.runAsUser;
      const seccomp = (sc.seccompProfile || podSc.seccompProfile || {}).type;
      check('containers: runAsNonRoot', runAsNonRoot === true, cwhere, 'runAsNonRoot is not true (container or pod securityContext)');
      check('containers: runAsUser is numeric and not root', Number.isInteger(runAsUser) && runAsUser !== 0, cwhere,
        `runAsUser ${runAsUser === undefined ? 'unset (an image with a named user cannot be verified as non-root)' : runAsUser}`);
      check('containers: readOnlyRootFilesystem', sc.readOnlyRootFilesystem === true, cwhere, 'securityContext.readOnlyRootFilesystem is not true');
      check('containers: allowPrivilegeEscalation is false', sc.allowPrivilegeEscalation === false, cwhere, 'securityContext.allowPrivilegeEscalation is not false');
      check('containers: capabilities drop ALL, add none',
        ((sc.capabilities || {}).drop || []).includes('ALL') && ((sc.capabilities || {}).add || []).length === 0, cwhere,
        'securityContext.capabilities must drop ALL and add nothing');
      check('containers: not privileged', sc.privileged !== true, cwhere, 'privileged');
      check('containers: seccompProfile RuntimeDefault', seccomp === 'RuntimeDefault' || seccomp === 'Localhost', cwhere,
        `seccompProfile ${seccomp || 'unset'} (container or pod securityContext)`);
      // /tmp.
      const tmpMount = (c.volumeMounts || []).find((m) => m.mountPath === '/tmp' || m.mountPath === '/tmp/');
      check('containers: an emptyDir is mounted at /tmp', tmpMount && tmp.some((v) => v.name === tmpMount.name), cwhere,
        'no emptyDir volume mounted at /tmp (the root filesystem is read-only)');
      // Mounts refer to volumes.
      for (const m of c.volumeMounts || []) {
        check('references: volumeMounts refer to volumes', volumes.has(m.name), cwhere, `volumeMount ${m.name} has no volume`);
      }
      // Images.
      const image = String(c.image || '');
      const lastPart = image.split('/').pop();
      const digest = image.includes('@sha256:');
      const tag = lastPart.includes(':') ? lastPart.split(':').pop() : '';
      check('images: pinned tag (not latest, not untagged)', digest || (tag !== '' && tag !== 'latest'), cwhere,
        `image ${image || '(none)'} has ${tag === 'latest' ? 'the tag latest' : 'no tag'}`);
      check('images: imagePullPolicy is not Always', c.imagePullPolicy !== 'Always', cwhere, 'imagePullPolicy Always');

      // Environment.
      const { env, problems } = containerEnv(objects, c);
      check('references: env and envFrom refer to existing objects and defined variables', problems.length === 0, cwhere, problems.join('; '));
      // NAME_FILE variables must name a file that the pod mounts.
      for (const [name, value] of env) {
        if (!name.endsWith('_FILE') || typeof value !== 'string' || !value.startsWith('/')) continue;
        const mount = (c.volumeMounts || []).filter((m) => value.startsWith(m.mountPath.replace(/\/?$/, '/')))
          .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
        let ok = false;
        let why = `${name}=${value} is not on any mounted volume`;
        if (mount) {
          const v = volumes.get(mount.name) || {};
          const rel = value.slice(mount.mountPath.replace(/\/?$/, '/').length);
          const src = v.secret || v.configMap;
          if (src && src.items) {
            ok = src.items.some((i) => i.path === rel);
            why = `${name}=${value}: volume ${mount.name} has no item with path ${rel}`;
          } else if (v.secret) {
            const s = find(objects, 'Secret', v.secret.secretName);
            ok = !!s && (s.data || {})[rel] !== undefined;
            why = `${name}=${value}: Secret ${v.secret.secretName} has no key ${rel}`;
          } else {
            ok = true;
          }
        }
        check('references: *_FILE variables name a mounted file', ok, cwhere, why);
      }

      // The services' own containers.
      const service = SERVICES[app] && !init ? app : null;
      if (service) {
        check('services: image is mp3converter/<service> with a pinned tag', new RegExp(`(^|/)mp3converter/${service}(:|@)`).test(image), cwhere, `image ${image}`);
        // (Ports, probes and the scrape annotations: admin.js.)
        // Shutdown: the kubelet must not kill the process before it has drained.
        const drain = parseDuration(env.get('SHUTDOWN_DRAIN_DELAY') || '0');
        const grace = parseDuration(env.get('SHUTDOWN_GRACE') || (service === 'converter' ? '25s' : '20s'));
        let needed = drain + grace;
        if (service === 'notification') needed += parseDuration(env.get('SMTP_TIMEOUT') || '60s');
        check('services: terminationGracePeriodSeconds is longer than the drain', spec.terminationGracePeriodSeconds > needed, cwhere,
          `terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} is not longer than the shutdown (${needed} s)`);
        if (service === 'converter') {
          check('services: the converter writes TMPDIR on the /tmp emptyDir', (env.get('TMPDIR') || '/tmp').replace(/\/$/, '') === '/tmp', cwhere,
            `TMPDIR=${env.get('TMPDIR')}`);
        }
        if (service === 'gateway' || service === 'converter') {
          check('services: STORAGE_URL is GridFS (mongodb://)', /^mongodb:\/\//.test(env.get('STORAGE_URL') || ''), cwhere,
            `STORAGE_URL=${env.get('STORAGE_URL') || '(unset: the file store inside the container)'}`);
        }
        if (service !== 'auth') {
          check('services: AMQP_URL is set', !!(env.get('AMQP_URL') || env.get('AMQP_URL_FILE')), cwhere, 'no AMQP_URL');
        }
      }
    }
  }
}

function pods(objects) {
  const out = [];
  for (const obj of objects.filter((o) => POD_KINDS.includes(o.kind))) {
    const { spec, labels, annotations } = podSpecOf(obj);
    if (spec) out.push({ obj, spec, labels: labels || {}, annotations: annotations || {}, app: (labels || {})[APP_LABEL] });
  }
  return out;
}

function checkServices(target, objects) {
  const all = pods(objects);
  for (const svc of byKind(objects, 'Service')) {
    const where = ref(target, svc);
    const sel = (svc.spec || {}).selector;
    if (!sel) continue;
    const selected = all.filter((p) => labelsMatch({ matchLabels: sel }, p.labels));
    check('references: Services select pods', selected.length > 0, where, `selector ${JSON.stringify(sel)} matches no pod template`);
    for (const port of svc.spec.ports || []) {
      const tp = port.targetPort === undefined ? port.port : port.targetPort;
      const ok = selected.some((p) => (p.spec.containers || []).some((c) => (c.ports || []).some((cp) => cp.name === tp || cp.containerPort === tp)));
      check('references: Service ports exist in the selected pods', selected.length === 0 || ok, where, `targetPort ${tp} is not a port of the selected pods`);
    }
    if (sel[APP_LABEL] === 'rabbitmq' || selected.some((p) => p.app === 'rabbitmq')) {
      check('rabbitmq: the management UI is not exposed', svc.spec.type !== 'NodePort' && svc.spec.type !== 'LoadBalancer' &&
        !(svc.spec.ports || []).some((p) => RABBITMQ_MANAGEMENT_PORTS.includes(p.port) || RABBITMQ_MANAGEMENT_PORTS.includes(p.targetPort)), where,
      'a Service exposes RabbitMQ\'s management port, or is a NodePort/LoadBalancer');
    }
  }
  for (const sts of byKind(objects, 'StatefulSet')) {
    const where = ref(target, sts);
    const svc = find(objects, 'Service', sts.spec.serviceName);
    check('statefulsets: serviceName is a headless Service selecting the pods',
      svc && svc.spec.clusterIP === 'None' && labelsMatch({ matchLabels: svc.spec.selector || {} }, ((sts.spec.template || {}).metadata || {}).labels),
      where, `serviceName ${sts.spec.serviceName} is not a headless Service (clusterIP: None) selecting this StatefulSet's pods`);
    check('statefulsets: have a volumeClaimTemplate', (sts.spec.volumeClaimTemplates || []).length > 0, where, 'no volumeClaimTemplates: the data would not survive the pod');
  }
  for (const name of STATEFUL) {
    check('statefulsets: MySQL, MongoDB and RabbitMQ are StatefulSets', !!find(objects, 'StatefulSet', name), `${target}: StatefulSet/${name}`, 'missing');
  }
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    check('services: a Deployment and a Service for each service', d && find(objects, 'Service', name), `${target}: ${name}`, 'Deployment or Service missing');
  }
}

function checkIngress(target, objects) {
  const ingresses = byKind(objects, 'Ingress');
  check('ingress: there is an Ingress', ingresses.length > 0, target, 'no Ingress');
  const rabbitServices = byKind(objects, 'Service').filter((s) => (s.spec.selector || {})[APP_LABEL] === 'rabbitmq' || /rabbitmq/.test(s.metadata.name));
  for (const ing of ingresses) {
    const where = ref(target, ing);
    const a = (ing.metadata || {}).annotations || {};
    const body = a['nginx.ingress.kubernetes.io/proxy-body-size'];
    const bodyBytes = parseNginxSize(body);
    check('ingress: proxy-body-size is unlimited or large enough for the largest upload', body !== undefined && (bodyBytes === 0 || bodyBytes >= MIN_BODY_BYTES), where,
      `nginx.ingress.kubernetes.io/proxy-body-size is ${body === undefined ? 'missing (nginx\'s default 1m answers 413)' : body}: use "0" or at least ${MIN_BODY_BYTES} bytes`);
    check('ingress: proxy-request-buffering is off', a['nginx.ingress.kubernetes.io/proxy-request-buffering'] === 'off', where,
      'nginx.ingress.kubernetes.io/proxy-request-buffering must be "off" (uploads stream to the gateway)');
    for (const t of ['proxy-read-timeout', 'proxy-send-timeout']) {
      const v = Number(a[`nginx.ingress.kubernetes.io/${t}`]);
      check('ingress: long proxy read and send timeouts', v >= MIN_PROXY_TIMEOUT_SECONDS, where, `nginx.ingress.kubernetes.io/${t} must be at least ${MIN_PROXY_TIMEOUT_SECONDS}`);
    }
    const backends = [];
    if ((ing.spec || {}).defaultBackend) backends.push(ing.spec.defaultBackend);
    for (const rule of (ing.spec || {}).rules || []) for (const p of (rule.http || {}).paths || []) backends.push(p.backend);
    for (const b of backends) {
      const s = (b || {}).service;
      if (!check('ingress: backends are existing Services and ports', s && find(objects, 'Service', s.name), where, `backend ${JSON.stringify(b)} is not an existing Service`)) continue;
      const svc = find(objects, 'Service', s.name);
      const port = (svc.spec.ports || []).find((p) => (s.port.name !== undefined ? p.name === s.port.name : p.port === s.port.number));
      check('ingress: backends are existing Services and ports', !!port, where, `Service ${s.name} has no port ${JSON.stringify(s.port)}`);
      const isRabbit = rabbitServices.some((r) => r.metadata.name === s.name) ||
        RABBITMQ_MANAGEMENT_PORTS.includes(s.port.number) || RABBITMQ_MANAGEMENT_PORTS.includes(s.port.name) ||
        (port && (RABBITMQ_MANAGEMENT_PORTS.includes(port.targetPort) || RABBITMQ_MANAGEMENT_PORTS.includes(port.port)));
      check('rabbitmq: no Ingress routes to RabbitMQ or its management port', !isRabbit, where, `routes to ${s.name}:${JSON.stringify(s.port)}`);
      check('ingress: routes only to the gateway', s.name === 'gateway', where, `routes to ${s.name}: only the gateway is public`);
    }
  }
}

function checkPdbs(target, objects) {
  for (const name of Object.keys(SERVICES)) {
    const d = find(objects, 'Deployment', name);
    if (!d) continue;
    const labels = ((d.spec.template || {}).metadata || {}).labels;
    const pdb = byKind(objects, 'PodDisruptionBudget').find((p) => labelsMatch((p.spec || {}).selector, labels));
    if (!check('pdb: a PodDisruptionBudget for each service', pdb, `${target}: Deployment/${name}`, 'no PodDisruptionBudget selects its pods')) continue;
    // A budget that allows no disruption blocks node drains for ever.
    const replicas = d.spec.replicas === undefined ? null : d.spec.replicas;
    const { minAvailable, maxUnavailable } = pdb.spec;
    let ok = true;
    if (maxUnavailable !== undefined) ok = maxUnavailable !== 0 && maxUnavailable !== '0%';
    else if (Number.isInteger(minAvailable) && replicas !== null) ok = minAvailable < replicas;
    else if (minAvailable === '100%') ok = false;
    check('pdb: budgets allow a disruption', ok, ref(target, pdb), `allows no voluntary disruption with ${replicas} replicas: node drains would hang`);
  }
}

// A NetworkPolicy port as the rules name it: a number or a name, `FROM-TO` for a range (endPort), `all` without port.
function portOf(x) {
  if (x.port === undefined) return 'all';
  return x.endPort !== undefined ? `${x.port}-${x.endPort}` : x.port;
}

// Who may open connections to a pod (p of pods()): the ingress policies selecting it, and per source (an app, `ns:NAME`,
// `ip:CIDR`, `*`...) the ports it may reach as the policies name them (numbers or names), `all` for a rule without ports.
function ingressSources(policies, p, all) {
  const selecting = policies.filter((np) => labelsMatch(np.spec.podSelector, p.labels) && (np.spec.policyTypes || ['Ingress']).includes('Ingress'));
  const portsBySource = new Map();
  for (const np of selecting) {
    for (const rule of np.spec.ingress || []) {
      const rulePorts = (rule.ports || []).map(portOf);
      const froms = rule.from === undefined || rule.from.length === 0 ? [{ any: true }] : rule.from;
      for (const f of froms) {
        const names = [];
        if (f.any) names.push('*');
        else if (f.ipBlock) names.push(`ip:${f.ipBlock.cidr}`);
        else if (f.namespaceSelector) {
          const ml = f.namespaceSelector.matchLabels || {};
          const ns = ml['kubernetes.io/metadata.name'];
          names.push(ns && Object.keys(ml).length === 1 && !(f.namespaceSelector.matchExpressions || []).length ? `ns:${ns}` : `namespaces:${JSON.stringify(f.namespaceSelector)}`);
        } else if (f.podSelector) {
          const matched = all.filter((q) => labelsMatch(f.podSelector, q.labels)).map((q) => q.app || q.obj.metadata.name);
          if (matched.length === 0) names.push(`pods:${JSON.stringify(f.podSelector)}(none)`);
          names.push(...matched);
        }
        for (const n of names) portsBySource.set(n, [...(portsBySource.get(n) || []), ...(rulePorts.length ? rulePorts : ['all'])]);
      }
    }
  }
  return { selecting, portsBySource };
}

function checkNetworkPolicies(target, objects) {
  const policies = byKind(objects, 'NetworkPolicy');
  check('networkpolicy: a default deny of ingress', policies.some((p) => selectorIsEmpty(p.spec.podSelector) &&
    (p.spec.policyTypes || []).includes('Ingress') && (p.spec.ingress || []).length === 0), target, 'no NetworkPolicy with podSelector {} denying all ingress');
  const all = pods(objects);
  for (const p of all) {
    const where = `${ref(target, p.obj)}`;
    const { selecting, portsBySource } = ingressSources(policies, p, all);
    const sources = new Set(portsBySource.keys());
    check('networkpolicy: every pod is covered by an ingress policy', selecting.length > 0, where, 'no NetworkPolicy selects these pods');
    const expected = INGRESS_SOURCES[p.app];
    if (expected) {
      const missing = expected.required.filter((s) => !sources.has(s));
      const extra = [...sources].filter((s) => !expected.required.includes(s) && !expected.optional.includes(s));
      check(`networkpolicy: only the intended sources reach each workload`, missing.length === 0 && extra.length === 0, where,
        `${missing.length ? `not reachable from ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `reachable from ${extra.join(', ')} too` : ''}`);
    } else {
      check('networkpolicy: only the intended sources reach each workload', false, where, `no expectation for workload ${p.app} in check.js (INGRESS_SOURCES)`);
    }
    if (p.app === 'rabbitmq') {
      // The management API and UI: KEDA's operator reads the queue's depth there (components/keda); everyone else
      // comes by port-forward. And KEDA's namespace reaches nothing else of the broker.
      const bad = [];
      for (const [source, ports] of portsBySource) {
        if (source === KEDA.source) {
          const other = ports.filter((x) => x !== KEDA.port && x !== 'management');
          if (other.length) bad.push(`${source} reaches ${other.join(', ')}: only the management API, ${KEDA.port}`);
        } else if (ports.some((x) => x === 'all' || RABBITMQ_MANAGEMENT_PORTS.includes(x))) {
          bad.push(`the management UI is reachable from ${source}`);
        }
      }
      check("rabbitmq: only KEDA's namespace reaches the management port, and only that port", bad.length === 0, where, bad.join('; '));
    }
  }
}

// The policies that make a pod egress-isolated: policyTypes names Egress (or, without policyTypes, it has egress rules).
function egressPolicies(policies, labels) {
  return policies.filter((np) => labelsMatch(np.spec.podSelector, labels) &&
    (np.spec.policyTypes || (np.spec.egress ? ['Ingress', 'Egress'] : ['Ingress'])).includes('Egress'));
}

// Where a rule's `to` entry leads: workloads of the namespace by app, dns, internet (an ipBlock that excepts every
// private range), kubernetes-api (an ipBlock of the policy KUBERNETES_API.policy), or what it is (ip:CIDR,
// namespaces:..., * for anywhere).
function egressTargets(t, all, np) {
  if (t.any) return ['*'];
  if (t.ipBlock && np && np.metadata && np.metadata.name === KUBERNETES_API.policy) return ['kubernetes-api'];
  if (t.ipBlock) return [ipBlockReaches(t.ipBlock, PRIVATE_RANGES).length ? `ip:${t.ipBlock.cidr}` : 'internet'];
  if (t.namespaceSelector) {
    const ns = (t.namespaceSelector.matchLabels || {})['kubernetes.io/metadata.name'];
    const app = t.podSelector && (t.podSelector.matchLabels || {})['k8s-app'];
    return [ns === 'kube-system' && app === 'kube-dns' ? 'dns' : `namespaces:${JSON.stringify(t.namespaceSelector)}`];
  }
  if (t.podSelector) {
    const names = all.filter((q) => labelsMatch(t.podSelector, q.labels)).map((q) => q.app || q.obj.metadata.name);
    return names.length ? names : [`pods:${JSON.stringify(t.podSelector)}(none)`];
  }
  return ['*'];
}

// Every destination:port/protocol the policies let a pod open a connection to.
function egressReached(selecting, all) {
  const reached = new Set();
  for (const np of selecting) {
    for (const rule of np.spec.egress || []) {
      const ports = (rule.ports || []).map((x) => `${portOf(x)}/${x.protocol || 'TCP'}`);
      const tos = rule.to === undefined || rule.to.length === 0 ? [{ any: true }] : rule.to;
      for (const t of tos) {
        for (const n of egressTargets(t, all, np)) for (const port of (ports.length ? ports : ['all'])) reached.add(`${n}:${port}`);
      }
    }
  }
  return reached;
}

// The one policy that may reach a private address, the Kubernetes API's (KUBERNETES_API): RabbitMQ's pods only, single
// addresses, the API's ports only, egress only.
function checkKubernetesApiPolicy(target, np, all) {
  const problems = [];
  const selected = all.filter((p) => labelsMatch(np.spec.podSelector, p.labels));
  if (!selected.length || selected.some((p) => p.app !== KUBERNETES_API.app)) {
    problems.push(`selects ${selected.map((p) => p.app || p.obj.metadata.name).join(', ') || 'no pod'}: only ${KUBERNETES_API.app}'s pods may reach the API`);
  }
  if ((np.spec.policyTypes || []).includes('Ingress') || (np.spec.ingress || []).length) problems.push('ingress rules: egress only');
  for (const rule of np.spec.egress || []) {
    const tos = rule.to === undefined || rule.to.length === 0 ? [{ any: true }] : rule.to;
    for (const t of tos) {
      const cidr = t.ipBlock && parseCidr(t.ipBlock.cidr);
      const single = cidr && cidr.first === cidr.last;
      if (!t.ipBlock || !single || Object.keys(t).length !== 1) problems.push(`destination ${JSON.stringify(t)}: want an ipBlock of one address (the API server's)`);
    }
    const ports = rule.ports || [];
    if (!ports.length || ports.some((x) => !KUBERNETES_API.ports.includes(x.port) || x.endPort !== undefined || (x.protocol || 'TCP') !== 'TCP')) {
      problems.push(`ports ${ports.map((x) => portOf(x)).join(', ') || 'all'}: want TCP ${KUBERNETES_API.ports.join(' or ')} only`);
    }
  }
  check('networkpolicy: only RabbitMQ reaches the Kubernetes API, at one address and the API\'s port', problems.length === 0, ref(target, np), problems.join('; '));
}

function checkEgress(target, objects) {
  const policies = byKind(objects, 'NetworkPolicy');
  const all = pods(objects);
  const denies = (np) => (np.spec.policyTypes || []).includes('Egress') && (np.spec.egress || []).length === 0;
  check('networkpolicy: a default deny of egress', policies.some((np) => selectorIsEmpty(np.spec.podSelector) && denies(np)), target,
    'no NetworkPolicy with podSelector {} denying all egress: a pod without an egress policy may connect anywhere');
  // No rule may reach the pod, service or node networks or the metadata address: an ipBlock excepts them, and a
  // rule without `to` allows every address.
  for (const np of policies) {
    if (np.metadata.name === KUBERNETES_API.policy) {
      checkKubernetesApiPolicy(target, np, all);
      continue;
    }
    for (const rule of np.spec.egress || []) {
      const tos = rule.to === undefined || rule.to.length === 0 ? [{ any: true }] : rule.to;
      for (const t of tos) {
        if (t.any) {
          check('networkpolicy: no egress rule reaches private ranges or the metadata address', false, ref(target, np),
            'a rule without `to` reaches every address: name the destinations');
        } else if (t.ipBlock) {
          const reaches = ipBlockReaches(t.ipBlock, PRIVATE_RANGES);
          check('networkpolicy: no egress rule reaches private ranges or the metadata address', reaches.length === 0, ref(target, np),
            `ipBlock ${t.ipBlock.cidr} reaches ${reaches.join(', ')}: add them to its except`);
        }
      }
    }
  }
  for (const p of all) {
    const where = ref(target, p.obj);
    const selecting = egressPolicies(policies, p.labels);
    check('networkpolicy: every pod is under a default deny of egress', selecting.some(denies), where,
      'no egress policy without rules selects these pods: they may connect anywhere');
    const reached = egressReached(selecting, all);
    const isolated = selecting.length > 0;
    check('networkpolicy: every workload can reach the cluster DNS', !isolated || DNS_EGRESS.every((d) => reached.has(d)), where,
      `cannot reach kube-system's kube-dns on ${DNS_EGRESS.filter((d) => !reached.has(d)).map((d) => d.slice(4)).join(' and ')}`);
    const expected = EGRESS_DESTINATIONS[p.app];
    if (!expected) {
      check('networkpolicy: each workload reaches only its own dependencies', false, where, `no expectation for workload ${p.app} in common.js (EGRESS_DESTINATIONS)`);
    } else {
      const got = isolated ? reached : new Set(['*:all']);
      const extra = [...got].filter((d) => !expected.required.includes(d) && !expected.optional.includes(d));
      const missing = expected.required.filter((d) => !got.has(d));
      check('networkpolicy: each workload reaches only its own dependencies', extra.length === 0 && missing.length === 0, where,
        `${extra.length ? `also reaches ${extra.join(', ')}` : ''}${extra.length && missing.length ? '; ' : ''}${missing.length ? `cannot reach ${missing.join(', ')}` : ''}`);
    }
    if (p.app === 'converter') {
      // It parses untrusted media: no address outside the namespace, however well excepted, and no other namespace.
      const outside = isolated ? [...reached].filter((d) => !d.startsWith('dns:') && (/^(\*|internet|ip:|namespaces:)/.test(d))) : ['anywhere (no egress policy)'];
      check('networkpolicy: the converters reach nothing outside the namespace', outside.length === 0, where,
        `reaches ${outside.join(', ')}`);
    }
  }
}

function checkSecretsRendered(target, objects, exampleKeys) {
  for (const s of byKind(objects, 'Secret')) {
    const where = ref(target, s);
    check('secrets: rendered Secrets come from the secretGenerator', /^mp3converter-secrets-[a-z0-9]{10}$/.test(s.metadata.name) && !s.stringData, where,
      'a Secret that is not generated from secrets.env (kustomize secretGenerator, with its hash suffix)');
    if (exampleKeys) {
      const keys = Object.keys(s.data || {}).sort();
      check('secrets: the Secret has exactly the keys of secrets.env.example', JSON.stringify(keys) === JSON.stringify([...exampleKeys].sort()), where,
        `keys ${keys.join(',')} differ from secrets.env.example's ${[...exampleKeys].sort().join(',')}`);
    }
  }
}

function checkNamespace(target, objects) {
  const ns = find(objects, 'Namespace', NAMESPACE);
  if (!check('namespace: the mp3converter namespace enforces the restricted Pod Security Standard', ns &&
    ((ns.metadata.labels || {})['pod-security.kubernetes.io/enforce'] === 'restricted'), `${target}: Namespace/${NAMESPACE}`, 'missing, or without pod-security.kubernetes.io/enforce: restricted')) return;
  for (const o of objects) {
    if (o.kind === 'Namespace') continue;
    check('namespace: every object is in the mp3converter namespace', (o.metadata || {}).namespace === NAMESPACE, ref(target, o), `namespace ${(o.metadata || {}).namespace}`);
  }
}

function notificationEnv(objects) {
  const d = find(objects, 'Deployment', 'notification');
  const c = d && ((d.spec.template.spec.containers || []).find((x) => x.name === 'notification'));
  return c ? containerEnv(objects, c).env : new Map();
}

function checkExpectations(target, objects) {
  const exp = OVERLAY_EXPECTATIONS[target] || {};
  if (exp.replicas) {
    for (const [name, want] of Object.entries(SERVICES)) {
      const d = find(objects, 'Deployment', name);
      check('base: replicas as in the original (auth 2, gateway 2, converter 4, notification 2)', d && d.spec.replicas === want.replicas, `${target}: Deployment/${name}`, `replicas ${d && d.spec.replicas}, want ${want.replicas}`);
    }
  }
  if (exp.smtp) {
    const env = notificationEnv(objects);
    for (const [k, v] of Object.entries(exp.smtp)) {
      check(`${target}: notification ${k}=${v}`, env.get(k) === v, `${target}: Deployment/notification`, `${k}=${env.get(k)}`);
    }
    if (exp.notSmtpHost) check(`${target}: notification does not send to ${exp.notSmtpHost}`, env.get('SMTP_HOST') !== exp.notSmtpHost, `${target}: Deployment/notification`, `SMTP_HOST=${env.get('SMTP_HOST')}`);
  }
  if (exp.maildev) {
    const d = find(objects, 'Deployment', 'maildev');
    const image = d && d.spec.template.spec.containers[0].image;
    check(`${target}: maildev runs, pinned`, d && /^(docker\.io\/)?maildev\/maildev:\d+\.\d+\.\d+$/.test(image), `${target}: Deployment/maildev`, `image ${image}`);
    const svc = find(objects, 'Service', 'maildev');
    check(`${target}: maildev's web inbox has a Service (port-forward)`, svc && (svc.spec.ports || []).some((p) => p.port === 1080), `${target}: Service/maildev`, 'no Service with the web port 1080');
  }
  if (exp.localImages) {
    for (const name of Object.keys(SERVICES)) {
      const d = find(objects, 'Deployment', name);
      const policy = d && d.spec.template.spec.containers[0].imagePullPolicy;
      check(`${target}: locally built images are not pulled`, policy === 'Never' || policy === 'IfNotPresent', `${target}: Deployment/${name}`, `imagePullPolicy ${policy}`);
    }
  }
  if (exp.tls) {
    for (const ing of byKind(objects, 'Ingress')) {
      const tls = (ing.spec.tls || []);
      check(`${target}: TLS on the Ingress from a named Secret`, tls.length > 0 && tls.every((t) => t.secretName) &&
        (ing.spec.rules || []).every((r) => tls.some((t) => (t.hosts || []).includes(r.host))), ref(target, ing), 'spec.tls with a secretName for every host is missing');
    }
  }
  // (exp.keda, the converters' autoscaler: keda.js.)
  for (const hpa of byKind(objects, 'HorizontalPodAutoscaler')) {
    const t = hpa.spec.scaleTargetRef;
    check('references: HPAs target existing workloads', !!find(objects, t.kind, t.name), ref(target, hpa), `${t.kind}/${t.name} does not exist`);
  }
}

module.exports = { byKind, find, containerEnv, checkPods, pods, checkServices, checkIngress, checkPdbs, checkNetworkPolicies, ingressSources, portOf, checkEgress, egressPolicies, egressReached, checkSecretsRendered, checkNamespace, notificationEnv, checkExpectations };
