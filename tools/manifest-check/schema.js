// 1. Schema: every object against the Kubernetes API's OpenAPI schema (kubernetes-models), plus unknown fields;
// KEDA's and prometheus-operator's custom resources against their CRDs' schemas (CRD_MODELS).
// Part of check.js (tools/manifest-check).
'use strict';

const fs = require('fs');
const path = require('path');
const { check, isObject, ref } = require('./common');

const modelsDir = path.dirname(require.resolve('kubernetes-models/package.json'));
const nodeModules = path.resolve(modelsDir, '..');
const modelsVersion = require('kubernetes-models/package.json').version;

// Custom resources: the models that the kubernetes-models project generates from each operator's released CRDs, on the
// same base packages as kubernetes-models 4 (pinned in package-lock.json; their newer majors need kubernetes-models 5
// and are ES modules). Each package names the CRDs it was generated from (its package.json's crd-generate input).
const CRD_MODELS = Object.fromEntries([
  ['keda.sh', '@kubernetes-models/keda'],
  ['monitoring.coreos.com', '@kubernetes-models/prometheus-operator'],
].map(([group, pkg]) => {
  const meta = require(`${pkg}/package.json`);
  const input = String(((meta['crd-generate'] || {}).input || [])[0] || '');
  const crds = /github\.com\/([^/]+\/[^/]+)\/releases\/download\/([^/]+)\//.exec(input);
  return [group, { pkg, dir: path.dirname(require.resolve(`${pkg}/package.json`)), version: meta.version,
    crds: crds ? `CRDs of ${crds[1]} ${crds[2]}` : input }];
}));
// Fields that the pinned CRDs predate: the path of the object that has them, each with its type as the packages write
// types, and the release that added it. (What their values must be is checked by the rules that use them.)
const NEWER_FIELDS = {
  'keda.sh/v1alpha1 TriggerAuthentication': {
    // KEDA 2.13 (kedacore/keda#4830): parameters that are not secret from a ConfigMap; the shape of secretTargetRef.
    '/spec': { configMapTargetRef: 'Array<{ "key": string; "name": string; "parameter": string; }>' },
  },
};

// Which packages and versions the schemas come from, for check.js's summary.
function schemaVersions() {
  return [`kubernetes-models ${modelsVersion}`,
    ...Object.values(CRD_MODELS).map((m) => `${m.pkg} ${m.version} (${m.crds})`)].join(', ');
}

function modelClass(apiVersion, kind) {
  const parts = String(apiVersion).split('/');
  const crd = parts.length === 2 ? CRD_MODELS[parts[0]] : null;
  const base = crd ? path.join(crd.dir, parts[0], parts[1]) : path.join(modelsDir, ...parts);
  const module = crd ? `${crd.pkg}/${parts[0]}/${parts[1]}` : `kubernetes-models/${parts.join('/')}`;
  let mod;
  try {
    mod = require(module);
  } catch {
    return { error: `no schema for apiVersion ${apiVersion} (${crd ? `${crd.pkg} ${crd.version}` : `kubernetes-models ${modelsVersion}`})` };
  }
  if (typeof mod[kind] !== 'function') return { error: `no schema for ${kind} in ${apiVersion}` };
  return { cls: mod[kind], file: path.join(base, `${kind}.d.ts`), iface: `I${kind}`, newer: NEWER_FIELDS[`${apiVersion} ${kind}`] || {} };
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
// `newer`: fields the schema predates, by the path of the object that has them (NEWER_FIELDS).
function unknownFields(value, fields, file, where, out, newer = {}) {
  // An interface without fields is an open object (RawExtension and the like): anything goes.
  if (!isObject(value) || Object.keys(fields).length === 0) return;
  if (newer[where || '/']) fields = { ...fields, ...newer[where || '/'] };
  for (const [key, v] of Object.entries(value)) {
    if (!Object.prototype.hasOwnProperty.call(fields, key)) {
      out.push(`${where}/${key}: unknown field`);
      continue;
    }
    unknownFieldsOfType(v, fields[key], file, `${where}/${key}`, out, newer);
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
function unknownFieldsOfType(value, type, file, where, out, newer = {}) {
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFieldsOfType(v, m[1], file, `${where}/${i}`, out, newer));
  } else if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (isObject(value)) for (const [k, v] of Object.entries(value)) unknownFieldsOfType(v, m[1], file, `${where}/${k}`, out, newer);
  } else if ((m = /^\{ (".+) \}$/.exec(type))) {
    // An inline object type: { "a"?: T; "b": U; }
    const fields = {};
    for (const part of splitTopLevel(m[1], ';')) {
      const f = /^"([^"]+)"\??: (.+)$/.exec(part);
      if (f) fields[f[1]] = f[2];
    }
    unknownFields(value, fields, file, where, out, newer);
  } else if (/^I\w+$/.test(type)) {
    const r = resolveRef(type, file);
    if (r) unknownFields(value, r.fields, r.file, where, out, newer);
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
  check('schema: valid against the Kubernetes OpenAPI schema (and the CRDs\' schemas)', error === null, where, error);
  const unknown = [];
  const decl = loadDecl(m.file);
  const fields = decl.interfaces.get(m.iface);
  if (fields) unknownFields(obj, fields, m.file, '', unknown, m.newer);
  check('schema: no unknown fields', unknown.length === 0, where, unknown.join(', '));
}

module.exports = { modelsDir, nodeModules, modelsVersion, CRD_MODELS, NEWER_FIELDS, schemaVersions, modelClass, declFiles, loadDecl, braceBalance, resolveRef, unknownFields, splitTopLevel, unknownFieldsOfType, validateSchema };
