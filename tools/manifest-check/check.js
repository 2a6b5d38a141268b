#!/usr/bin/env node
// Checks the rendered Kubernetes manifests of deploy/kubernetes; run by scripts/check-manifests, which renders each
// kustomization with `kubectl kustomize` first.
//
//   node tools/manifest-check/check.js --repo DIR --target NAME=RENDERED.yaml [--target ...]
//
// 1. Schema: every object is validated against the Kubernetes API's OpenAPI schema by the npm package
//    kubernetes-models (pinned in package-lock.json), and checked for fields the schema does not know (a typo such
//    as `readinesProbe` would otherwise be dropped silently by the API server).
// 2. Policy: the rules of docs/operations.md ("What scripts/check-manifests checks") on the rendered objects
//    (policy.js; admin.js: the admin ports, probes, scrape annotations and who reaches them; rabbitmq.js: each
//    service's RabbitMQ user and the broker's definitions; ha.js: the replicated brokers and databases of
//    overlays/production, quorum queues everywhere).
// 3. Repository: no Secret with literal data in any YAML file of the repository, secrets only from git-ignored env
//    files, placeholder values only in secrets.env.example.
// 4. Monitoring: deploy/monitoring, rendered here with kubectl kustomize (monitoring.js): the schemas of its
//    PodMonitors and PrometheusRule, and that what it scrapes and queries exists (keda.js: the converters' autoscaler).
//
// Prints every failure and a summary; exits 1 when anything failed, 2 on a usage error.
'use strict';

const fs = require('fs');
const YAML = require('yaml');
const { results, check, isObject } = require('./common');
const { schemaVersions, validateSchema } = require('./schema');
const { checkPods, checkServices, checkIngress, checkPdbs, checkNetworkPolicies, checkEgress, checkSecretsRendered, checkNamespace, checkExpectations } = require('./policy');
const { checkRepository } = require('./repository');
const { checkRabbitmqUsers } = require('./rabbitmq');
const { checkAdminPorts } = require('./admin');
const { checkAutoscaling } = require('./keda');
const { checkHighAvailability } = require('./ha');
const { MONITORING_DIR, renderMonitoring, checkMonitoring } = require('./monitoring');

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
  const rendered = new Map();
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
    rendered.set(t.name, objects);
    for (const o of objects) validateSchema(t.name, o);
    checkNamespace(t.name, objects);
    checkPods(t.name, objects);
    checkAdminPorts(t.name, objects);
    checkServices(t.name, objects);
    checkIngress(t.name, objects);
    checkPdbs(t.name, objects);
    checkNetworkPolicies(t.name, objects);
    checkEgress(t.name, objects);
    checkRabbitmqUsers(t.name, objects);
    checkSecretsRendered(t.name, objects, exampleKeys);
    checkAutoscaling(t.name, objects);
    checkHighAvailability(t.name, objects);
    checkExpectations(t.name, objects);
  }
  // deploy/monitoring, rendered here (it has no secrets), against the pods of production (else the base).
  const monitoring = renderMonitoring(repo);
  if (check('render: deploy/monitoring renders', !monitoring.error, MONITORING_DIR, monitoring.error)) {
    counts.push(`${MONITORING_DIR} ${monitoring.objects.length}`);
    for (const o of monitoring.objects) validateSchema(MONITORING_DIR, o);
    checkMonitoring(MONITORING_DIR, monitoring.objects, { repo, workloads: rendered.get('overlays/production') || rendered.get('base') || [] });
  }

  let passed = 0;
  let failed = 0;
  const width = Math.max(...[...results.keys()].map((k) => k.length));
  console.log(`objects rendered: ${counts.join(', ')}; schemas: ${schemaVersions()}`);
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
