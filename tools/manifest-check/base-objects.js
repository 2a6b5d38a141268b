// What the checker's tests (test/) share: the base's objects without kustomize, and the failures a set of checks finds.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const { results } = require('./common');

const base = path.join(__dirname, '..', '..', 'deploy', 'kubernetes', 'base');

// The base's objects without kustomize: the resources of kustomization.yaml as they are, the generated ConfigMaps
// (literals and files, without the hash suffix), and the Secret with the example's keys.
function baseObjects() {
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

// The failures of `checks` on `objects`, by rule.
function failuresOf(checks, objects) {
  results.clear();
  for (const check of checks) check('test', objects);
  const out = {};
  for (const [rule, r] of results) if (r.failures.length) out[rule] = r.failures;
  return out;
}

module.exports = { base, baseObjects, failuresOf };
