// What the checker's tests (test/) share: the base's objects without kustomize, and the failures a set of checks finds.
'use strict';

const assert = require('node:assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const YAML = require('yaml');
const { results } = require('./common');

const base = path.join(__dirname, '..', '..', 'deploy', 'kubernetes', 'base');

// Parsed once per test file; each caller gets its own copy to break.
const cache = new Map();
function cached(key, make) {
  if (!cache.has(key)) cache.set(key, make());
  return structuredClone(cache.get(key));
}

// The base's objects without kustomize: the resources of kustomization.yaml as they are, the generated ConfigMaps
// (literals and files, without the hash suffix), and the Secret with the example's keys.
function baseObjects() {
  return cached('base', parseBase);
}
function parseBase() {
  const kustomization = YAML.parse(fs.readFileSync(path.join(base, 'kustomization.yaml'), 'utf8'));
  const objects = [];
  for (const f of kustomization.resources) {
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(base, f), 'utf8'))) {
      const o = d.toJS();
      if (o) objects.push(o);
    }
  }
  for (const gen of kustomization.configMapGenerator) {
    const data = {};
    for (const l of gen.literals || []) data[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
    for (const f of gen.files || []) {
      const [key, file] = f.includes('=') ? f.split('=') : [path.basename(f), f];
      data[key] = fs.readFileSync(path.join(base, file), 'utf8');
    }
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data });
  }
  const keys = fs.readFileSync(path.join(base, 'secrets.env.example'), 'utf8').split('\n')
    .filter((l) => /^[A-Z]/.test(l)).map((l) => l.split('=')[0]);
  objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'mp3converter-secrets' },
    data: Object.fromEntries(keys.map((k) => [k, 'eA=='])) });
  return objects;
}

const kubernetes = path.join(base, '..');
const monitoring = path.join(kubernetes, '..', 'monitoring');
const readDocs = (file) => YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
const named = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata && o.metadata.name === name);

// The JSON patch operations of a kustomize patch (add, replace, remove), on one object.
function applyJsonPatch(obj, ops) {
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop();
    const parent = keys.reduce((o, k) => o[k], obj);
    if (op.op === 'remove') delete parent[last];
    else parent[last] = op.value;
  }
}

// The base with a component of deploy/kubernetes/components (the way overlays/production has components/keda):
// its resources, its ConfigMaps (created, or merged into the base's), its JSON patches. Names without hash suffixes,
// as in baseObjects().
function withComponent(name, objects) {
  return objects ? addComponent(name, objects) : cached(`component ${name}`, () => addComponent(name, baseObjects()));
}
function addComponent(name, objects) {
  const dir = path.join(kubernetes, 'components', name);
  const k = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
  for (const f of k.resources || []) objects.push(...readDocs(path.join(dir, f)));
  for (const gen of k.configMapGenerator || []) {
    const data = Object.fromEntries((gen.literals || []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const existing = named(objects, 'ConfigMap', gen.name);
    if (gen.behavior === 'merge' && existing) Object.assign(existing.data, data);
    else objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data });
  }
  for (const p of k.patches || []) {
    const target = named(objects, p.target.kind, p.target.name);
    applyJsonPatch(target, YAML.parse(p.patch));
  }
  for (const o of objects) if (o.metadata && !o.metadata.namespace) o.metadata.namespace = 'mp3converter';
  return objects;
}

// An overlay as `kubectl kustomize` renders it (names with their hash suffixes), from a temporary copy of
// deploy/kubernetes in which every secrets.env is its committed example, as scripts/check-manifests renders it. For the
// rules that concern what components and patches make of the base (components/ha in overlays/production).
function renderOverlay(name) {
  return cached(`overlay ${name}`, () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-check-'));
    try {
      const copy = path.join(tmp, 'kubernetes');
      fs.cpSync(kubernetes, copy, { recursive: true, filter: (src) => path.basename(src) !== 'secrets.env' });
      const examples = [];
      const walk = (dir) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name === 'secrets.env.example') examples.push(p);
        }
      };
      walk(copy);
      for (const example of examples) fs.copyFileSync(example, example.replace(/\.example$/, ''));
      const out = execFileSync('kubectl', ['kustomize', path.join(copy, 'overlays', name)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      return YAML.parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}

// deploy/monitoring without kustomize: its resources, and the dashboard's ConfigMap with its labels.
function monitoringObjects() {
  return cached('monitoring', parseMonitoring);
}
function parseMonitoring() {
  const k = YAML.parse(fs.readFileSync(path.join(monitoring, 'kustomization.yaml'), 'utf8'));
  const objects = [];
  for (const f of k.resources) objects.push(...readDocs(path.join(monitoring, f)));
  for (const gen of k.configMapGenerator || []) {
    const data = {};
    for (const f of gen.files || []) {
      const [key, file] = f.includes('=') ? f.split('=') : [path.basename(f), f];
      data[key] = fs.readFileSync(path.join(monitoring, file), 'utf8');
    }
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name, labels: { ...((gen.options || {}).labels || {}) } }, data });
  }
  for (const o of objects) o.metadata.namespace = k.namespace;
  return objects;
}

// The failures of `checks` on `objects`, by rule; `target` names the rendering (an overlay's expectations apply).
function failuresOf(checks, objects, target = 'test') {
  results.clear();
  for (const check of checks) check(target, objects);
  const out = {};
  for (const [rule, r] of results) if (r.failures.length) out[rule] = r.failures;
  return out;
}

// expectFailure(objects, rule, pattern?) for a test file's failures(objects): the rule fails (with a message that
// matches the pattern).
function failureExpecter(failures) {
  return (objects, rule, pattern) => {
    const f = failures(objects);
    assert.ok(f[rule], `expected "${rule}" to fail; failures: ${JSON.stringify(f, null, 2)}`);
    if (pattern) assert.match(f[rule].join('\n'), pattern);
  };
}

// The RabbitMQ definitions the broker's ConfigMap carries, changed by `change`; returns the objects.
function setDefinitions(objects, change) {
  const configMap = named(objects, 'ConfigMap', 'rabbitmq-config');
  const d = JSON.parse(configMap.data['definitions.template.json']);
  change(d);
  configMap.data['definitions.template.json'] = JSON.stringify(d);
  return objects;
}

module.exports = { base, baseObjects, withComponent, renderOverlay, monitoringObjects, applyJsonPatch, failuresOf, named,
  failureExpecter, setDefinitions };
