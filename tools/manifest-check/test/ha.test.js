// High availability (ha.js; components/ha, as overlays/production includes it): overlays/production as kubectl
// kustomize renders it passes the HA rules and the NetworkPolicy, egress, RabbitMQ-user and pod rules they rely on; then copies
// broken one way at a time, each of which its rule must catch. The quorum-queue and token rules also against the base.
// Run by scripts/check-manifests:
//   node --test tools/manifest-check/test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { checkHighAvailability, RULES } = require('../ha');
const { checkPods, checkEgress, checkNetworkPolicies } = require('../policy');
const { checkRabbitmqUsers } = require('../rabbitmq');
const { renderOverlay, baseObjects, failuresOf, failureExpecter, setDefinitions } = require('../base-objects');

const TARGET = 'overlays/production';
const failures = (objects) => failuresOf([checkPods, checkEgress, checkNetworkPolicies, checkRabbitmqUsers, checkHighAvailability], objects, TARGET);
const expectFailure = failureExpecter(failures);
const production = () => renderOverlay('production');
const named = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const without = (objects, kind, name) => objects.filter((o) => !(o.kind === kind && o.metadata.name === name));
// A generated ConfigMap by the name before its hash suffix.
const configMap = (objects, name) => objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith(`${name}-`));
const podSpec = (objects, kind, name) => named(objects, kind, name).spec.template.spec;
const container = (objects, kind, name, c) => podSpec(objects, kind, name).containers.find((x) => x.name === c);
const env = (c, name) => c.env.find((e) => e.name === name);

test('overlays/production passes every HA rule, and the NetworkPolicy, egress, RabbitMQ-user and pod rules', () => {
  assert.deepStrictEqual(failures(production()), {});
});

test('the base: quorum queues, no token, and none of the HA rules (one replica each is right there)', () => {
  assert.deepStrictEqual(failuresOf([checkHighAvailability], baseObjects(), 'base'), {});
});

test('a StatefulSet with one replica, or two members allowed on one node', () => {
  let objects = production();
  named(objects, 'StatefulSet', 'rabbitmq').spec.replicas = 1;
  expectFailure(objects, RULES.replicas, /StatefulSet\/rabbitmq: replicas 1, want 3/);
  objects = production();
  const affinity = podSpec(objects, 'StatefulSet', 'mongodb').affinity.podAntiAffinity;
  affinity.preferredDuringSchedulingIgnoredDuringExecution = affinity.requiredDuringSchedulingIgnoredDuringExecution
    .map((podAffinityTerm) => ({ weight: 100, podAffinityTerm }));
  delete affinity.requiredDuringSchedulingIgnoredDuringExecution;
  expectFailure(objects, RULES.antiAffinity, /StatefulSet\/mongodb: no requiredDuringSchedulingIgnoredDuringExecution term/);
  objects = production();
  podSpec(objects, 'StatefulSet', 'mysql').affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey = 'topology.kubernetes.io/zone';
  expectFailure(objects, RULES.antiAffinity, /StatefulSet\/mysql/);
  objects = production();
  delete podSpec(objects, 'StatefulSet', 'mysql').topologySpreadConstraints;
  expectFailure(objects, RULES.zones, /StatefulSet\/mysql/);
});

test('a replicated StatefulSet without its PodDisruptionBudget, or one that allows two members down', () => {
  expectFailure(without(production(), 'PodDisruptionBudget', 'mysql'), RULES.pdb, /StatefulSet\/mysql: no PodDisruptionBudget/);
  const objects = production();
  named(objects, 'PodDisruptionBudget', 'rabbitmq').spec.maxUnavailable = 2;
  expectFailure(objects, RULES.pdb, /StatefulSet\/rabbitmq: PodDisruptionBudget\/rabbitmq \(maxUnavailable 2/);
});

test('members started in order', () => {
  const objects = production();
  named(objects, 'StatefulSet', 'rabbitmq').spec.podManagementPolicy = 'OrderedReady';
  expectFailure(objects, RULES.parallel, /StatefulSet\/rabbitmq: podManagementPolicy OrderedReady/);
});

test('members that cannot reach one another', () => {
  let objects = without(production(), 'NetworkPolicy', 'rabbitmq-cluster');
  expectFailure(objects, RULES.peers, /StatefulSet\/rabbitmq: no egress to rabbitmq:4369\/TCP, ingress from rabbitmq on 4369, .*35672-35682/);
  objects = production();
  named(objects, 'NetworkPolicy', 'mysql-galera').spec.ingress[0].ports = [{ port: 4567, protocol: 'TCP' }];
  expectFailure(objects, RULES.peers, /StatefulSet\/mysql: no ingress from mysql on 4444, ingress from mysql on 4568/);
  objects = production();
  named(objects, 'NetworkPolicy', 'mongodb-replica-set').spec.egress = [];
  expectFailure(objects, RULES.peers, /StatefulSet\/mongodb: no egress to mongodb:27017\/TCP/);
});

test('a Deployment whose replicas may all land on one node', () => {
  const objects = production();
  podSpec(objects, 'Deployment', 'gateway').topologySpreadConstraints = podSpec(objects, 'Deployment', 'gateway').topologySpreadConstraints
    .filter((c) => c.topologyKey !== 'kubernetes.io/hostname');
  expectFailure(objects, RULES.deployments, /Deployment\/gateway/);
});

test('a classic queue, or a quorum queue that dead-letters at most once', () => {
  const quorum = (objects) => failuresOf([checkHighAvailability], objects, 'base');
  let f = quorum(setDefinitions(baseObjects(), (d) => { delete d.queues.find((q) => q.name === 'mp3.dead').arguments['x-queue-type']; }));
  assert.match((f[RULES.quorum] || []).join('\n'), /mp3\.dead: x-queue-type unset \(classic\)/);
  f = quorum(setDefinitions(baseObjects(), (d) => { d.queues.find((q) => q.name === 'video').arguments['x-queue-type'] = 'classic'; }));
  assert.match((f[RULES.quorum] || []).join('\n'), /video: x-queue-type classic/);
  f = quorum(setDefinitions(baseObjects(), (d) => { delete d.queues.find((q) => q.name === 'video.retry.30s').arguments['x-overflow']; }));
  assert.match((f[RULES.quorum] || []).join('\n'), /video\.retry\.30s: dead-letters without x-overflow reject-publish \(so at most once\)/);
});

test("an AMQP_URL without every node, with a node twice, or another user in one of its URLs", () => {
  const url = (objects, name) => env(container(objects, 'Deployment', name, name), 'AMQP_URL');
  let objects = production();
  url(objects, 'converter').value = url(objects, 'converter').value.split(',').slice(0, 2).join(',');
  expectFailure(objects, RULES.amqp, /Deployment\/converter: AMQP_URL .*: no URL for rabbitmq-2\.rabbitmq-headless\.mp3converter\.svc/);
  objects = production();
  const list = url(objects, 'gateway').value.split(',');
  url(objects, 'gateway').value = [list[0], list[0], list[2]].join(',');
  expectFailure(objects, RULES.amqp, /Deployment\/gateway: .*no URL for rabbitmq-1.*a node is listed twice/);
  objects = production();
  url(objects, 'auth').value = 'amqp://auth:$(RABBITMQ_AUTH_PASSWORD)@rabbitmq:5672/';
  expectFailure(objects, RULES.amqp, /Deployment\/auth: .*rabbitmq is not a node's own name/);
  objects = production();
  url(objects, 'notification').value = url(objects, 'notification').value.replace(/amqp:\/\/notification:(.*)$/, 'amqp://mp3converter:$1');
  expectFailure(objects, 'rabbitmq: each service logs in as its own user', /Deployment\/notification: AMQP_URL is .*each URL of a list/);
});

test('a STORAGE_URL without the replica set, a member, majority writes or primary reads', () => {
  const storage = (objects) => env(container(objects, 'Deployment', 'gateway', 'gateway'), 'STORAGE_URL');
  let objects = production();
  storage(objects).value = storage(objects).value.replace('replicaSet=rs0&', '');
  expectFailure(objects, RULES.storage, /Deployment\/gateway: .*replicaSet=\(none\), want mongod's --replSet rs0/);
  objects = production();
  storage(objects).value = storage(objects).value.replace('w=majority', 'w=1').replace('readPreference=primary', 'readPreference=secondaryPreferred');
  expectFailure(objects, RULES.storage, /w=1, want majority; .*readPreference=secondaryPreferred, want primary/);
  objects = production();
  storage(objects).value = storage(objects).value.replace(/,mongodb-2\.[^/]*\//, '/');
  expectFailure(objects, RULES.storage, /not every member: mongodb-2\.mongodb-headless\.mp3converter\.svc missing; 2 hosts/);
});

test('RabbitMQ nodes that would not find one another, or would not stop on the minority side', () => {
  const conf = (objects) => configMap(objects, 'rabbitmq-cluster-config').data;
  let objects = production();
  conf(objects)['91-cluster.conf'] = conf(objects)['91-cluster.conf'].replace('pause_minority', 'autoheal')
    .replace('service_name = rabbitmq-headless', 'service_name = rabbitmq');
  expectFailure(objects, RULES.rabbitmq, /cluster_formation\.k8s\.service_name = rabbitmq, want rabbitmq-headless; cluster_partition_handling = autoheal/);
  objects = production();
  conf(objects).enabled_plugins = '[rabbitmq_management,rabbitmq_prometheus].\n';
  expectFailure(objects, RULES.rabbitmq, /rabbitmq_peer_discovery_k8s is not in a mounted \/etc\/rabbitmq\/enabled_plugins/);
  objects = production();
  env(container(objects, 'StatefulSet', 'rabbitmq', 'rabbitmq'), 'RABBITMQ_NODENAME').value = 'rabbit@$(POD_NAME)';
  expectFailure(objects, RULES.rabbitmq, /RABBITMQ_NODENAME rabbit@\$\(POD_NAME\): want rabbit@/);
  objects = production();
  named(objects, 'Role', 'rabbitmq-peer-discovery').rules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] });
  expectFailure(objects, RULES.rabbitmq, /its Role allows get secrets/);
  objects = without(production(), 'NetworkPolicy', 'rabbitmq-kubernetes-api');
  expectFailure(objects, RULES.rabbitmq, /no NetworkPolicy lets it reach the Kubernetes API/);
});

test('the Kubernetes API policy: a private range, another port, or other pods', () => {
  const rule = "networkpolicy: only RabbitMQ reaches the Kubernetes API, at one address and the API's port";
  let objects = production();
  named(objects, 'NetworkPolicy', 'rabbitmq-kubernetes-api').spec.egress[0].to[0].ipBlock.cidr = '10.0.0.0/8';
  expectFailure(objects, rule, /want an ipBlock of one address/);
  objects = production();
  named(objects, 'NetworkPolicy', 'rabbitmq-kubernetes-api').spec.egress[0].ports.push({ port: 22, protocol: 'TCP' });
  expectFailure(objects, rule, /ports 443, 6443, 22: want TCP 443 or 6443 only/);
  objects = production();
  named(objects, 'NetworkPolicy', 'rabbitmq-kubernetes-api').spec.podSelector = {};
  expectFailure(objects, rule, /selects .*gateway.*: only rabbitmq's pods may reach the API/);
  // A real address of the API server, in a private range: allowed to this policy only.
  objects = production();
  named(objects, 'NetworkPolicy', 'rabbitmq-kubernetes-api').spec.egress[0].to[0].ipBlock.cidr = '10.96.0.1/32';
  assert.deepStrictEqual(failures(objects), {});
});

test('a Kubernetes API token in another pod, or in an init container', () => {
  let objects = production();
  const rabbit = podSpec(objects, 'StatefulSet', 'rabbitmq');
  const mongo = podSpec(objects, 'StatefulSet', 'mongodb');
  mongo.volumes.push(rabbit.volumes.find((v) => v.name === 'kube-api-access'));
  mongo.containers[0].volumeMounts.push({ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
  expectFailure(objects, RULES.token, /StatefulSet\/mongodb: volume kube-api-access carries a service account token, mounted by mongodb/);
  objects = production();
  podSpec(objects, 'StatefulSet', 'rabbitmq').initContainers[0].volumeMounts.push({ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
  expectFailure(objects, RULES.token, /StatefulSet\/rabbitmq: .*mounted by erlang-cookie, rabbitmq/);
});

test('mongod without its key file, or a replica set that no Job initiates', () => {
  let objects = production();
  const c = container(objects, 'StatefulSet', 'mongodb', 'mongodb');
  c.args = c.args.slice(0, c.args.indexOf('--keyFile'));
  expectFailure(objects, RULES.mongodb, /mongod has no --keyFile/);
  objects = without(production(), 'Job', 'mongodb-init');
  expectFailure(objects, RULES.mongodb, /no Job initiates the set \(a container with MONGODB_REPLICA_SET=rs0\)/);
});

test('MariaDB without wsrep, with a node missing from the cluster address, or ready while not in sync', () => {
  const cnf = (objects) => configMap(objects, 'mariadb-galera').data;
  let objects = production();
  cnf(objects)['60-galera.cnf'] = cnf(objects)['60-galera.cnf'].replace('wsrep_on = ON', 'wsrep_on = OFF')
    .replace(/,mysql-2\.mysql-headless[^\n]*/, '');
  expectFailure(objects, RULES.galera, /wsrep_on = OFF, want on; .*wsrep_cluster_address .*mysql-2\.mysql-headless\.mp3converter\.svc missing/);
  objects = production();
  container(objects, 'StatefulSet', 'mysql', 'mariadb').readinessProbe.exec.command = ['mariadb-admin', 'ping'];
  expectFailure(objects, RULES.galera, /the readiness probe does not ask for wsrep_local_state_comment Synced/);
});

test('a MYSQL_HOST without every Galera node', () => {
  let objects = production();
  configMap(objects, 'mp3converter-mysql').data.MYSQL_HOST = 'mysql-0.mysql-headless.mp3converter.svc.cluster.local';
  expectFailure(objects, RULES.mysqlHost, /Deployment\/gateway: MYSQL_HOST=mysql-0\S*: mysql-1\.mysql-headless\.mp3converter\.svc, mysql-2\S* missing/);
  // The Service of the nodes in sync will do.
  objects = production();
  configMap(objects, 'mp3converter-mysql').data.MYSQL_HOST = 'mysql';
  assert.deepStrictEqual(failures(objects), {});
});

test("a Job's containers need no probes; a Deployment's still do", () => {
  let objects = production();
  assert.ok(!podSpec(objects, 'Job', 'mongodb-init').containers[0].readinessProbe);
  assert.deepStrictEqual(failuresOf([checkPods], objects, TARGET), {});
  objects = production();
  delete container(objects, 'Deployment', 'auth', 'auth').readinessProbe;
  expectFailure(objects, 'containers: have a readinessProbe', /Deployment\/auth container auth: no readinessProbe/);
});
