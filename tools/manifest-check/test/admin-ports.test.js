// The admin-port rules (admin.js: /metrics and the probes on each service's admin port, the scrape annotations, only
// the monitoring namespace reaching admin ports and never the public ones, no Ingress to an admin port) against the
// base's own manifests, then against copies broken one way at a time: each must be caught by its rule. Run by
// scripts/check-manifests:
//   node --test tools/manifest-check/test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { checkAdminPorts } = require('../admin');
const { baseObjects, failuresOf, named, failureExpecter } = require('../base-objects');

function failures(objects) {
  return failuresOf([checkAdminPorts], objects);
}

const container = (objects, name) => named(objects, 'Deployment', name).spec.template.spec.containers[0];
const template = (objects, name) => named(objects, 'Deployment', name).spec.template;
const monitoringPorts = (objects) => named(objects, 'NetworkPolicy', 'allow-monitoring').spec.ingress[0];
const expectFailure = failureExpecter(failures);

const PORTS = 'services: container ports are `admin` (and `http` for auth and the gateway)';
const VARS = 'services: PORT and ADMIN_PORT match the container ports';
const READY = 'services: readinessProbe is GET /readyz on the admin port';
const LIVE = 'services: livenessProbe is GET /healthz on the admin port';
const ANNOTATIONS = 'services: the pod template has the scrape annotations for the admin port';
const INGRESS = 'ingress: never routes to an admin port';
const MONITORING_ONLY_ADMIN = "networkpolicy: the monitoring namespace reaches only admin ports (and RabbitMQ's 15692)";
const MONITORING_REACHES = "networkpolicy: the monitoring namespace reaches each workload's metrics port";
const ADMIN_ONLY_MONITORING = 'networkpolicy: only the monitoring namespace reaches the admin ports';

test('the base passes every admin-port rule', () => {
  assert.deepStrictEqual(failures(baseObjects()), {});
});

test('probes on the public port (as before the admin port)', () => {
  const objects = baseObjects();
  for (const name of ['auth', 'gateway']) {
    const c = container(objects, name);
    c.readinessProbe.httpGet.port = 'http';
    c.livenessProbe.httpGet.port = name === 'auth' ? 5000 : 8080;
  }
  expectFailure(objects, READY, /Deployment\/auth container auth: readinessProbe must be httpGet \/readyz on the admin port 5001 \(not \/readyz on http\)/);
  expectFailure(objects, LIVE, /Deployment\/gateway container gateway: livenessProbe must be httpGet \/healthz on the admin port 8090/);
});

test('a service without its admin port, or with it under another name or number', () => {
  let objects = baseObjects();
  container(objects, 'auth').ports = container(objects, 'auth').ports.filter((p) => p.name !== 'admin');
  expectFailure(objects, PORTS, /Deployment\/auth container auth: ports http=5000, want admin=5001, http=5000/);
  expectFailure(objects, READY, /Deployment\/auth/);
  objects = baseObjects();
  container(objects, 'gateway').ports.find((p) => p.name === 'admin').name = 'metrics';
  expectFailure(objects, PORTS, /Deployment\/gateway container gateway: ports /);
  objects = baseObjects();
  container(objects, 'converter').ports[0].containerPort = 9000;
  expectFailure(objects, PORTS, /converter: ports admin=9000, want admin=8081/);
  expectFailure(objects, LIVE, /Deployment\/converter/);
});

test('ADMIN_PORT or PORT that is not the container port', () => {
  let objects = baseObjects();
  named(objects, 'ConfigMap', 'gateway-config').data.ADMIN_PORT = '9090';
  expectFailure(objects, VARS, /Deployment\/gateway container gateway: ADMIN_PORT=9090, want 8090/);
  objects = baseObjects();
  named(objects, 'ConfigMap', 'auth-config').data.PORT = '5001';
  expectFailure(objects, VARS, /Deployment\/auth container auth: PORT=5001, want 5000/);
  objects = baseObjects();
  named(objects, 'ConfigMap', 'notification-config').data.ADMIN_PORT = '8080';
  expectFailure(objects, VARS, /Deployment\/notification container notification: ADMIN_PORT=8080/);
});

test('scrape annotations missing or naming the public port', () => {
  let objects = baseObjects();
  template(objects, 'auth').metadata.annotations['prometheus.io/port'] = '5000';
  expectFailure(objects, ANNOTATIONS, /Deployment\/auth: prometheus\.io\/port is "5000", want "5001"/);
  objects = baseObjects();
  delete template(objects, 'converter').metadata.annotations;
  expectFailure(objects, ANNOTATIONS, /Deployment\/converter: prometheus\.io\/scrape is missing, want "true"/);
  objects = baseObjects();
  template(objects, 'gateway').metadata.annotations['prometheus.io/path'] = '/admin/metrics';
  expectFailure(objects, ANNOTATIONS, /Deployment\/gateway: prometheus\.io\/path is "\/admin\/metrics", want "\/metrics"/);
});

test('the monitoring namespace allowed to the public ports (as before the admin port)', () => {
  const objects = baseObjects();
  monitoringPorts(objects).ports = [5000, 8080, 8081, 8082, 15692].map((port) => ({ port }));
  expectFailure(objects, MONITORING_ONLY_ADMIN, /Deployment\/auth: the monitoring namespace reaches 5000, 8080:/);
  expectFailure(objects, MONITORING_REACHES, /Deployment\/auth: the monitoring namespace may reach these pods but not their metrics port 5001/);
  expectFailure(objects, MONITORING_REACHES, /Deployment\/gateway: .* metrics port 8090/);
});

test('the monitoring namespace on every port, on a named public port, or without an admin port', () => {
  let objects = baseObjects();
  delete monitoringPorts(objects).ports;
  expectFailure(objects, MONITORING_ONLY_ADMIN, /Deployment\/auth: the monitoring namespace reaches every port/);
  objects = baseObjects();
  monitoringPorts(objects).ports.push({ port: 'http' });
  expectFailure(objects, MONITORING_ONLY_ADMIN, /Deployment\/gateway: the monitoring namespace reaches http/);
  objects = baseObjects();
  monitoringPorts(objects).ports.push({ port: 3306 });
  expectFailure(objects, MONITORING_ONLY_ADMIN, /reaches 3306/);
  objects = baseObjects();
  monitoringPorts(objects).ports = monitoringPorts(objects).ports.filter((p) => p.port !== 8082);
  expectFailure(objects, MONITORING_REACHES, /Deployment\/notification: .* metrics port 8082/);
  // The admin ports by name are as good as by number.
  objects = baseObjects();
  monitoringPorts(objects).ports = [{ port: 'admin' }, { port: 15692 }];
  assert.deepStrictEqual(failures(objects), {});
});

test('another source allowed to an admin port', () => {
  let objects = baseObjects();
  named(objects, 'NetworkPolicy', 'gateway').spec.ingress[0].ports.push({ port: 8090 });
  expectFailure(objects, ADMIN_ONLY_MONITORING, /Deployment\/gateway: ns:ingress-nginx reaches the admin port 8090/);
  objects = baseObjects();
  delete named(objects, 'NetworkPolicy', 'auth').spec.ingress[0].ports;
  expectFailure(objects, ADMIN_ONLY_MONITORING, /Deployment\/auth: gateway reaches the admin port 5001 \(a rule without ports\)/);
});

test('an Ingress that routes to the admin port', () => {
  let objects = baseObjects();
  named(objects, 'Service', 'gateway').spec.ports.push({ name: 'admin', port: 8090, targetPort: 'admin' });
  named(objects, 'Ingress', 'mp3converter').spec.rules[0].http.paths[0].backend.service.port = { name: 'admin' };
  expectFailure(objects, INGRESS, /Ingress\/mp3converter: routes to gateway:\{"name":"admin"\}, target port admin/);
  objects = baseObjects();
  named(objects, 'Service', 'gateway').spec.ports[0].targetPort = 8090;
  expectFailure(objects, INGRESS, /target port 8090/);
});
