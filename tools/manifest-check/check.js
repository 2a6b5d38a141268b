#!/usr/bin/env node
// Checks the rendered Kubernetes manifests of deploy/kubernetes; run by scripts/check-manifests, which renders each
// kustomization with `kubectl kustomize` first.
//
//   node tools/manifest-check/check.js --repo DIR --target NAME=RENDERED.yaml [--target ...]
//
// 1. Schema: every object is validated against the Kubernetes API's OpenAPI schema by the npm package
//    kubernetes-models (pinned in package-lock.json), and checked for fields the schema does not know (a typo such
//    as `readinesProbe` would otherwise be dropped silently by the API server).
// 2. Policy: the rules of docs/operations.md ("What scripts/check-manifests checks") on the rendered objects.
// 3. Repository: no Secret with literal data in any YAML file of the repository, secrets only from git-ignored env
//    files, placeholder values only in secrets.env.example.
//
// Prints every failure and a summary; exits 1 when anything failed, 2 on a usage error.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const YAML = require('yaml');

// ---------------------------------------------------------------------------------------------------------------
// What the system needs (docs/configuration.md, docs/architecture.md).

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
  auth: { required: ['gateway'], optional: ['ns:monitoring'] },
  converter: { required: [], optional: ['ns:monitoring'] },
  notification: { required: [], optional: ['ns:monitoring'] },
  mysql: { required: ['auth', 'gateway', 'notification'], optional: [] },
  mongodb: { required: ['gateway', 'converter'], optional: [] },
  rabbitmq: { required: ['gateway', 'converter', 'notification'], optional: ['ns:monitoring'] },
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

// ---------------------------------------------------------------------------------------------------------------
// 1. Schema: kubernetes-models, plus unknown fields from its type declarations.

const modelsDir = path.dirname(require.resolve('kubernetes-models/package.json'));
const nodeModules = path.resolve(modelsDir, '..');
const modelsVersion = require('kubernetes-models/package.json').version;

function modelClass(apiVersion, kind) {
  const parts = String(apiVersion).split('/');
  const module = parts.length === 1 ? `kubernetes-models/${parts[0]}` : `kubernetes-models/${parts[0]}/${parts[1]}`;
  let mod;
  try {
    mod = require(module);
  } catch {
    return { error: `no schema for apiVersion ${apiVersion} (kubernetes-models ${modelsVersion})` };
  }
  if (typeof mod[kind] !== 'function') return { error: `no schema for ${kind} in ${apiVersion}` };
  const file = parts.length === 1 ? path.join(modelsDir, parts[0], `${kind}.d.ts`)
    : path.join(modelsDir, parts[0], parts[1], `${kind}.d.ts`);
  return { cls: mod[kind], file, iface: `I${kind}` };
}

// The generated declarations: `export interface IX { "field"?: TYPE; ... }`, one file per type, with imports for the
// types it uses. Parsed lazily, only for the types the objects reach.
const declFiles = new Map(); // file -> { imports: name -> file, interfaces: name -> { field: typeString }, alias }
function loadDecl(file) {
  if (declFiles.has(file)) return declFiles.get(file);
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { /* no declaration: treated as a leaf type */ }
  text = text.replace(/\/\*\*[\s\S]*?\*\//g, '');
  const decl = { imports: new Map(), interfaces: new Map(), aliases: new Map() };
  for (const m of text.matchAll(/^import \{ ([\w, ]+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    let target;
    if (spec.startsWith('.')) target = path.resolve(path.dirname(file), `${spec}.d.ts`);
    else if (spec.startsWith('@kubernetes-models/apimachinery/')) target = path.join(nodeModules, `${spec}.d.ts`);
    if (!target) continue;
    for (const name of m[1].split(',').map((s) => s.trim())) decl.imports.set(name, target);
  }
  for (const m of text.matchAll(/^export \{ (\w+) as (\w+)/gm)) decl.aliases.set(m[2], m[1]);
  for (const m of text.matchAll(/^export interface (\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)\n\}/gm)) {
    const fields = {};
    let current = null;
    let buffer = '';
    for (const line of m[2].split('\n')) {
      const start = /^ {4}"([^"]+)"\??: (.*)$/.exec(line);
      if (current === null && start) {
        current = start[1];
        buffer = start[2];
      } else if (current !== null) {
        buffer += ` ${line.trim()}`;
      }
      if (current !== null && buffer.endsWith(';') && braceBalance(buffer) === 0) {
        fields[current] = buffer.slice(0, -1).replace(/\s+/g, ' ').trim();
        current = null;
      }
    }
    decl.interfaces.set(m[1], fields);
  }
  declFiles.set(file, decl);
  return decl;
}
function braceBalance(s) {
  let n = 0;
  for (const c of s) { if (c === '{' || c === '<') n += 1; else if (c === '}' || c === '>') n -= 1; }
  return n;
}
// The fields of a named type reached from `file`, or null when it is not an object type (a string, a Quantity...).
function resolveRef(name, file) {
  const decl = loadDecl(file);
  let target = file;
  let localName = name;
  if (decl.imports.has(name)) target = decl.imports.get(name);
  const tdecl = loadDecl(target);
  if (tdecl.aliases.has(localName)) localName = tdecl.aliases.get(localName);
  const fields = tdecl.interfaces.get(localName);
  return fields ? { fields, file: target } : null;
}
function unknownFields(value, fields, file, where, out) {
  // An interface without fields is an open object (RawExtension and the like): anything goes.
  if (!isObject(value) || Object.keys(fields).length === 0) return;
  for (const [key, v] of Object.entries(value)) {
    if (!Object.prototype.hasOwnProperty.call(fields, key)) {
      out.push(`${where}/${key}: unknown field`);
      continue;
    }
    unknownFieldsOfType(v, fields[key], file, `${where}/${key}`, out);
  }
}
// Splits at `sep` outside of <> and {}.
function splitTopLevel(s, sep) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '{' || c === '<') depth += 1;
    else if (c === '}' || c === '>') depth -= 1;
    else if (c === sep && depth === 0) { parts.push(s.slice(start, i)); start = i + 1; }
  }
  parts.push(s.slice(start));
  return parts.map((x) => x.trim()).filter(Boolean);
}
function unknownFieldsOfType(value, type, file, where, out) {
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFieldsOfType(v, m[1], file, `${where}/${i}`, out));
  } else if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (isObject(value)) for (const [k, v] of Object.entries(value)) unknownFieldsOfType(v, m[1], file, `${where}/${k}`, out);
  } else if ((m = /^\{ (".+) \}$/.exec(type))) {
    // An inline object type: { "a"?: T; "b": U; }
    const fields = {};
    for (const part of splitTopLevel(m[1], ';')) {
      const f = /^"([^"]+)"\??: (.+)$/.exec(part);
      if (f) fields[f[1]] = f[2];
    }
    unknownFields(value, fields, file, where, out);
  } else if (/^I\w+$/.test(type)) {
    const r = resolveRef(type, file);
    if (r) unknownFields(value, r.fields, r.file, where, out);
  }
}

function validateSchema(target, obj) {
  const where = ref(target, obj);
  const m = obj.apiVersion && obj.kind ? modelClass(obj.apiVersion, obj.kind) : { error: 'no apiVersion or kind' };
  if (!check('schema: apiVersion and kind are known', !m.error, where, m.error)) return;
  let error = null;
  try {
    new m.cls(obj).validate();
  } catch (e) {
    error = e.message;
  }
  check('schema: valid against the Kubernetes OpenAPI schema', error === null, where, error);
  const unknown = [];
  const decl = loadDecl(m.file);
  const fields = decl.interfaces.get(m.iface);
  if (fields) unknownFields(obj, fields, m.file, '', unknown);
  check('schema: no unknown fields', unknown.length === 0, where, unknown.join(', '));
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Policy

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
      // Probes (not for init containers, which run to completion).
      if (!init) {
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
        const want = SERVICES[service];
        check('services: image is mp3converter/<service> with a pinned tag', new RegExp(`(^|/)mp3converter/${service}(:|@)`).test(image), cwhere, `image ${image}`);
        const portOf = (p) => {
          if (typeof p === 'number') return p;
          const named = (c.ports || []).find((x) => x.name === p);
          return named ? named.containerPort : NaN;
        };
        const rp = (c.readinessProbe || {}).httpGet;
        const lp = (c.livenessProbe || {}).httpGet;
        check('services: readinessProbe is GET /readyz on the service port', rp && rp.path === '/readyz' && portOf(rp.port) === want.port, cwhere,
          `readinessProbe must be httpGet /readyz on port ${want.port}`);
        check('services: livenessProbe is GET /healthz on the service port', lp && lp.path === '/healthz' && portOf(lp.port) === want.port, cwhere,
          `livenessProbe must be httpGet /healthz on port ${want.port}`);
        check('services: the port variable matches the probed port', Number(env.get(want.portVar) || want.port) === want.port, cwhere,
          `${want.portVar}=${env.get(want.portVar)} but the probes use ${want.port}`);
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
    const { spec, labels } = podSpecOf(obj);
    if (spec) out.push({ obj, spec, labels: labels || {}, app: (labels || {})[APP_LABEL] });
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

function checkNetworkPolicies(target, objects) {
  const policies = byKind(objects, 'NetworkPolicy');
  check('networkpolicy: a default deny of ingress', policies.some((p) => selectorIsEmpty(p.spec.podSelector) &&
    (p.spec.policyTypes || []).includes('Ingress') && (p.spec.ingress || []).length === 0), target, 'no NetworkPolicy with podSelector {} denying all ingress');
  const all = pods(objects);
  for (const p of all) {
    const where = `${ref(target, p.obj)}`;
    const selecting = policies.filter((np) => labelsMatch(np.spec.podSelector, p.labels) && (np.spec.policyTypes || ['Ingress']).includes('Ingress'));
    check('networkpolicy: every pod is covered by an ingress policy', selecting.length > 0, where, 'no NetworkPolicy selects these pods');
    const sources = new Set();
    const portsBySource = new Map();
    for (const np of selecting) {
      for (const rule of np.spec.ingress || []) {
        const rulePorts = (rule.ports || []).map((x) => x.port);
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
          for (const n of names) {
            sources.add(n);
            portsBySource.set(n, [...(portsBySource.get(n) || []), ...(rulePorts.length ? rulePorts : ['all'])]);
          }
        }
      }
    }
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
      const open = [...portsBySource.entries()].filter(([, ports]) => ports.some((x) => x === 'all' || RABBITMQ_MANAGEMENT_PORTS.includes(x)));
      check('rabbitmq: no NetworkPolicy opens the management port', open.length === 0, where,
        `the management UI is reachable from ${open.map(([s]) => s).join(', ')}`);
    }
  }
}

function checkEgress(target, objects) {
  const policies = byKind(objects, 'NetworkPolicy');
  const all = pods(objects);
  for (const p of all) {
    const expected = EGRESS_DESTINATIONS[p.app];
    if (!expected) continue;
    const where = ref(target, p.obj);
    const selecting = policies.filter((np) => labelsMatch(np.spec.podSelector, p.labels) && (np.spec.policyTypes || []).includes('Egress'));
    if (!check('networkpolicy: the converters reach only RabbitMQ, MongoDB and DNS', selecting.length > 0, where, 'no egress NetworkPolicy selects these pods: they may connect anywhere')) continue;
    const reached = new Set();
    for (const np of selecting) {
      for (const rule of np.spec.egress || []) {
        const ports = (rule.ports || []).map((x) => `${x.port}/${x.protocol || 'TCP'}`);
        const tos = rule.to === undefined || rule.to.length === 0 ? [{ any: true }] : rule.to;
        for (const t of tos) {
          let names = [];
          if (t.any || t.ipBlock) names = [t.any ? '*' : `ip:${t.ipBlock.cidr}`];
          else if (t.namespaceSelector) {
            const ns = (t.namespaceSelector.matchLabels || {})['kubernetes.io/metadata.name'];
            const app = t.podSelector && (t.podSelector.matchLabels || {})['k8s-app'];
            names = [ns === 'kube-system' && app === 'kube-dns' ? 'dns' : `namespaces:${JSON.stringify(t.namespaceSelector)}`];
          } else if (t.podSelector) {
            names = all.filter((q) => labelsMatch(t.podSelector, q.labels)).map((q) => q.app || q.obj.metadata.name);
            if (names.length === 0) names = [`pods:${JSON.stringify(t.podSelector)}(none)`];
          }
          for (const n of names) for (const port of (ports.length ? ports : ['all'])) reached.add(`${n}:${port}`);
        }
      }
    }
    const extra = [...reached].filter((d) => !expected.includes(d));
    const missing = expected.filter((d) => !reached.has(d));
    check('networkpolicy: the converters reach only RabbitMQ, MongoDB and DNS', extra.length === 0 && missing.length === 0, where,
      `${extra.length ? `also reaches ${extra.join(', ')}` : ''}${extra.length && missing.length ? '; ' : ''}${missing.length ? `cannot reach ${missing.join(', ')}` : ''}`);
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
  if (exp.hpa) {
    const hpa = byKind(objects, 'HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === 'converter');
    check(`${target}: an autoscaling/v2 HPA scales the converters on CPU`, hpa && hpa.apiVersion === 'autoscaling/v2' &&
      (hpa.spec.metrics || []).some((m) => m.type === 'Resource' && m.resource.name === 'cpu'), `${target}: HorizontalPodAutoscaler`, 'no autoscaling/v2 HPA with a cpu metric targets Deployment/converter');
    const d = find(objects, 'Deployment', 'converter');
    check(`${target}: the HPA owns the converters' replica count`, d && d.spec.replicas === undefined, `${target}: Deployment/converter`,
      'spec.replicas is set: every apply would reset what the HPA chose');
  }
  for (const hpa of byKind(objects, 'HorizontalPodAutoscaler')) {
    const t = hpa.spec.scaleTargetRef;
    check('references: HPAs target existing workloads', !!find(objects, t.kind, t.name), ref(target, hpa), `${t.kind}/${t.name} does not exist`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Repository

function git(repo, args) {
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function envFileKeys(file) {
  const map = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const i = t.indexOf('=');
    map.set(i < 0 ? t : t.slice(0, i), i < 0 ? '' : t.slice(i + 1));
  }
  return map;
}

function checkRepository(repo) {
  const where = 'repository';
  let files;
  try {
    // What is or would be committed: tracked files, and untracked ones that are not ignored.
    files = git(repo, ['ls-files', '--cached', '--others', '--exclude-standard', '-z']).split('\0').filter(Boolean);
  } catch (e) {
    check('repository: git lists the files', false, where, `git ls-files failed in ${repo}: ${e.message}`);
    return null;
  }
  files = files.filter((f) => fs.existsSync(path.join(repo, f)));
  let exampleKeys = null;
  for (const f of files.filter((x) => /\.(ya?ml|json)$/.test(x))) {
    const text = fs.readFileSync(path.join(repo, f), 'utf8');
    let docs;
    try {
      docs = f.endsWith('.json') ? [JSON.parse(text)] : YAML.parseAllDocuments(text).map((d) => {
        if (d.errors.length) throw d.errors[0];
        return d.toJS();
      });
    } catch (e) {
      // Only the manifests must parse; other files are scanned when they do.
      if (f.startsWith('deploy/')) check('repository: manifests are valid YAML', false, f, e.message);
      continue;
    }
    for (const doc of docs) {
      if (!isObject(doc)) continue;
      if (doc.kind === 'Secret') {
        const literal = Object.keys(doc.data || {}).length > 0 || Object.keys(doc.stringData || {}).length > 0;
        check('repository: no Secret with literal data in git', !literal, `${f}: Secret/${(doc.metadata || {}).name}`,
          'a Secret with data or stringData: generate it from a git-ignored env file (kustomize secretGenerator) instead');
      }
      if (doc.kind === 'Kustomization' || /(^|\/)kustomization\.ya?ml$/.test(f)) {
        for (const gen of doc.secretGenerator || []) {
          const gwhere = `${f}: secretGenerator ${gen.name}`;
          check('repository: secretGenerators take no literals', !(gen.literals || []).length, gwhere, 'literal secret values in git');
          for (const src of [...(gen.envs || []), ...(gen.env ? [gen.env] : []), ...(gen.files || []).map((x) => x.split('=').pop())]) {
            const rel = path.join(path.dirname(f), src);
            let ignored = false;
            try { git(repo, ['check-ignore', '-q', '--no-index', rel]); ignored = true; } catch { ignored = false; }
            check('repository: secret sources are git-ignored and untracked', ignored && !files.includes(rel), gwhere,
              `${rel} is ${ignored ? 'tracked' : 'not git-ignored'}: add it to deploy/kubernetes/.gitignore`);
            const example = `${rel}.example`;
            if (check('repository: an example of each secret env file is committed', files.includes(example), gwhere, `${example} is missing`)) {
              const keys = envFileKeys(path.join(repo, example));
              exampleKeys = new Set(keys.keys());
              for (const [k, v] of keys) {
                check('repository: secrets.env.example holds placeholders only', v === '' || /change-me/i.test(v), `${example}: ${k}`,
                  'a value that is not a placeholder (empty or containing "change-me")');
              }
            }
          }
        }
      }
    }
  }
  const tracked = git(repo, ['ls-files', '--cached', '-z']).split('\0').filter(Boolean);
  const committedSecrets = tracked.filter((f) => /(^|\/)secrets\.env$/.test(f));
  check('repository: no secrets.env is tracked', committedSecrets.length === 0, where, `tracked: ${committedSecrets.join(', ')}`);
  return exampleKeys;
}

// ---------------------------------------------------------------------------------------------------------------

function main(argv) {
  let repo = null;
  const targets = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--repo') repo = argv[++i];
    else if (argv[i] === '--target') {
      const [name, file] = String(argv[++i]).split('=');
      if (!name || !file) { console.error(`bad --target ${argv[i]}: want NAME=FILE`); process.exit(2); }
      targets.push({ name, file });
    } else { console.error(`unknown argument ${argv[i]}\nusage: check.js --repo DIR --target NAME=RENDERED.yaml ...`); process.exit(2); }
  }
  if (!repo || targets.length === 0) { console.error('usage: check.js --repo DIR --target NAME=RENDERED.yaml ...'); process.exit(2); }

  const exampleKeys = checkRepository(repo);
  const counts = [];
  for (const t of targets) {
    let objects;
    try {
      objects = YAML.parseAllDocuments(fs.readFileSync(t.file, 'utf8')).map((d) => {
        if (d.errors.length) throw d.errors[0];
        return d.toJS();
      }).filter(isObject);
    } catch (e) {
      check('render: output parses', false, t.name, e.message);
      continue;
    }
    counts.push(`${t.name} ${objects.length}`);
    for (const o of objects) validateSchema(t.name, o);
    checkNamespace(t.name, objects);
    checkPods(t.name, objects);
    checkServices(t.name, objects);
    checkIngress(t.name, objects);
    checkPdbs(t.name, objects);
    checkNetworkPolicies(t.name, objects);
    checkEgress(t.name, objects);
    checkSecretsRendered(t.name, objects, exampleKeys);
    checkExpectations(t.name, objects);
  }

  let passed = 0;
  let failed = 0;
  const width = Math.max(...[...results.keys()].map((k) => k.length));
  console.log(`objects rendered: ${counts.join(', ')}; schemas: kubernetes-models ${modelsVersion}`);
  for (const [rule, r] of results) {
    passed += r.passed;
    failed += r.failures.length;
    const status = r.failures.length ? `FAIL (${r.failures.length} of ${r.passed + r.failures.length})` : `ok (${r.passed})`;
    console.log(`  ${rule.padEnd(width)}  ${status}`);
  }
  const failures = [...results.entries()].filter(([, r]) => r.failures.length);
  if (failures.length) {
    console.log('\nfailures:');
    for (const [rule, r] of failures) {
      console.log(`  ${rule}:`);
      for (const f of r.failures) console.log(`    - ${f}`);
    }
  }
  console.log(`\nmanifests: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main(process.argv.slice(2));
