// 3. Repository: no Secret with literal data in any YAML file, secrets only from git-ignored env files.
// Part of check.js (tools/manifest-check).
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const YAML = require('yaml');
const { check, isObject } = require('./common');

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

module.exports = { git, envFileKeys, checkRepository };
