// The converters' autoscaler (components/keda, as overlays/production includes it): the schemas of KEDA's objects
// (@kubernetes-models/keda), the autoscaling rules (keda.js), KEDA's way to the management API (policy.js) and its
// read-only RabbitMQ user (rabbitmq.js), against the base with the component, then against copies broken one way at a
// time: each must be caught by its rule. Run by scripts/check-manifests:
//   node --test tools/manifest-check/test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { validateSchema } = require('../schema');
const { checkAutoscaling } = require('../keda');
const { checkNetworkPolicies } = require('../policy');
const { checkRabbitmqUsers } = require('../rabbitmq');
const { withComponent, failuresOf, named, failureExpecter, setDefinitions } = require('../base-objects');

// KEDA's objects only: the base's are validated by the real run, and slowly.
const schemas = (target, objects) => objects.filter((o) => o.apiVersion === 'keda.sh/v1alpha1').forEach((o) => validateSchema(target, o));
// As the production overlay: its expectations (KEDA scales the converters) apply.
function failures(objects) {
  return failuresOf([schemas, checkAutoscaling, checkNetworkPolicies, checkRabbitmqUsers], objects, 'overlays/production');
}
const scaledObject = (objects) => named(objects, 'ScaledObject', 'converter');
const trigger = (objects) => scaledObject(objects).spec.triggers[0];
const auth = (objects) => named(objects, 'TriggerAuthentication', 'keda-rabbitmq');
const expectFailure = failureExpecter(failures);

const UNKNOWN = 'schema: no unknown fields';
const INVALID = "schema: valid against the Kubernetes OpenAPI schema (and the CRDs' schemas)";
const TRIGGER = "autoscaling: the converters scale on their own queue's depth, read as KEDA's read-only user";
const ONE = 'autoscaling: one autoscaler per workload (no HPA beside a ScaledObject)';
const OWNS = 'autoscaling: the autoscaler owns the replica count';
const SLOW = 'autoscaling: the converters scale down slowly, one at a time';
const MANAGEMENT = "rabbitmq: only KEDA's namespace reaches the management port, and only that port";
const KEDA_USER = "rabbitmq: KEDA's user reads the management API and nothing else";

test('the base with components/keda passes every schema, autoscaling, NetworkPolicy and RabbitMQ rule', () => {
  assert.deepStrictEqual(failures(withComponent('keda')), {});
});

test('a misspelt field of the ScaledObject, or a trigger without metadata, is refused by the schema', () => {
  let objects = withComponent('keda');
  const spec = scaledObject(objects).spec;
  spec.minReplicas = spec.minReplicaCount;
  delete spec.minReplicaCount;
  expectFailure(objects, UNKNOWN, /ScaledObject\/converter: \/spec\/minReplicas: unknown field/);
  objects = withComponent('keda');
  scaledObject(objects).spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilisationWindowSeconds = 900;
  expectFailure(objects, UNKNOWN, /\/spec\/advanced\/horizontalPodAutoscalerConfig\/behavior\/scaleDown\/stabilisationWindowSeconds: unknown field/);
  objects = withComponent('keda');
  delete trigger(objects).metadata;
  expectFailure(objects, INVALID, /ScaledObject\/converter: .*metadata/);
  objects = withComponent('keda');
  scaledObject(objects).spec.maxReplicaCount = '16';
  expectFailure(objects, INVALID, /maxReplicaCount/);
});

test('configMapTargetRef is known (KEDA 2.13, newer than the pinned CRDs); a misspelt one is not', () => {
  const objects = withComponent('keda');
  auth(objects).spec.configMapTargetRefs = auth(objects).spec.configMapTargetRef;
  delete auth(objects).spec.configMapTargetRef;
  expectFailure(objects, UNKNOWN, /TriggerAuthentication\/keda-rabbitmq: \/spec\/configMapTargetRefs: unknown field/);
  const again = withComponent('keda');
  auth(again).spec.configMapTargetRef[0].paramter = 'username';
  expectFailure(again, UNKNOWN, /\/spec\/configMapTargetRef\/0\/paramter: unknown field/);
});

test('a trigger without queueName, or on another queue than the converters\'', () => {
  let objects = withComponent('keda');
  delete trigger(objects).metadata.queueName;
  expectFailure(objects, TRIGGER, /queueName missing, want the converters' queue video/);
  objects = withComponent('keda');
  trigger(objects).metadata.queueName = 'mp3';
  expectFailure(objects, TRIGGER, /queueName mp3, want the converters' queue video/);
  // The converters' own VIDEO_QUEUE wins over the default.
  objects = withComponent('keda');
  named(objects, 'ConfigMap', 'converter-config').data.VIDEO_QUEUE = 'videos';
  expectFailure(objects, TRIGGER, /queueName video, want the converters' queue videos/);
});

test('KEDA\'s AMQP mode, or the HTTP mode without the jobs being converted', () => {
  let objects = withComponent('keda');
  trigger(objects).metadata.protocol = 'amqp';
  trigger(objects).metadata.host = 'amqp://rabbitmq.mp3converter.svc:5672/';
  expectFailure(objects, TRIGGER, /protocol amqp: want http.*unacknowledged/);
  objects = withComponent('keda');
  trigger(objects).metadata.excludeUnacknowledged = 'true';
  expectFailure(objects, TRIGGER, /excludeUnacknowledged/);
  objects = withComponent('keda');
  trigger(objects).metadata.value = '1.5';
  expectFailure(objects, TRIGGER, /value 1\.5: want QueueLength and a whole number/);
});

test('a CPU HPA beside the ScaledObject (the HPA this replaced)', () => {
  const objects = withComponent('keda');
  objects.push({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'converter', namespace: 'mp3converter' },
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'converter' }, minReplicas: 4, maxReplicas: 16,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }] } });
  expectFailure(objects, ONE, /Deployment\/converter: scaled by HorizontalPodAutoscaler\/converter and ScaledObject\/converter/);
});

test('a ScaledObject on another workload, or none on the converters', () => {
  let objects = withComponent('keda');
  scaledObject(objects).spec.scaleTargetRef.name = 'gateway';
  expectFailure(objects, 'autoscaling: ScaledObjects scale the converters', /targets Deployment\/gateway/);
  expectFailure(objects, OWNS, /Deployment\/gateway: spec\.replicas is set/);
  expectFailure(objects, 'overlays/production: KEDA scales the converters on their queue', /0 ScaledObjects target it/);
  objects = withComponent('keda');
  scaledObject(objects).spec.scaleTargetRef.name = 'converters';
  expectFailure(objects, 'references: ScaledObjects target existing workloads', /Deployment\/converters does not exist/);
});

test('the converters\' replicas set again (the patch that removes them gone)', () => {
  const objects = withComponent('keda');
  named(objects, 'Deployment', 'converter').spec.replicas = 4;
  expectFailure(objects, OWNS, /Deployment\/converter: spec\.replicas is set/);
});

test('credentials in the host, another user\'s password, a Secret key that does not exist', () => {
  let objects = withComponent('keda');
  trigger(objects).metadata.host = 'http://keda:hunter2@rabbitmq-0.rabbitmq-headless.mp3converter.svc:15672/';
  expectFailure(objects, TRIGGER, /host carries credentials/);
  objects = withComponent('keda');
  trigger(objects).metadata.host = 'http://rabbitmq.mp3converter.svc:15672/';
  expectFailure(objects, TRIGGER, /want http:\/\/rabbitmq-0\.rabbitmq-headless\.mp3converter\.svc:15672\//);
  objects = withComponent('keda');
  auth(objects).spec.secretTargetRef[0].key = 'RABBITMQ_CONVERTER_PASSWORD';
  expectFailure(objects, TRIGGER, /password from secret mp3converter-secrets\/RABBITMQ_CONVERTER_PASSWORD: want the Secret's RABBITMQ_KEDA_PASSWORD/);
  objects = withComponent('keda');
  named(objects, 'ConfigMap', 'keda-rabbitmq').data.username = 'converter';
  expectFailure(objects, TRIGGER, /username from configmap keda-rabbitmq\/username \(converter\): want keda/);
  objects = withComponent('keda');
  auth(objects).spec.secretTargetRef[0].key = 'RABBITMQ_KEDA_PASWORD';
  expectFailure(objects, 'references: TriggerAuthentications refer to existing Secrets and ConfigMaps and their keys',
    /secretTargetRef password: Secret mp3converter-secrets has no key RABBITMQ_KEDA_PASWORD/);
});

test('a quick scale-down, which would stop several converters in the middle of their jobs', () => {
  let objects = withComponent('keda');
  scaledObject(objects).spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].value = 4;
  expectFailure(objects, SLOW, /policies: want type Pods, value 1/);
  objects = withComponent('keda');
  delete scaledObject(objects).spec.advanced;
  expectFailure(objects, SLOW, /stabilizationWindowSeconds undefined: want at least 300/);
});

test('the management port open to another namespace, or KEDA\'s namespace let through to AMQP', () => {
  let objects = withComponent('keda');
  named(objects, 'NetworkPolicy', 'allow-monitoring').spec.ingress[0].ports.push({ port: 15672 });
  expectFailure(objects, MANAGEMENT, /StatefulSet\/rabbitmq: the management UI is reachable from ns:monitoring/);
  objects = withComponent('keda');
  named(objects, 'NetworkPolicy', 'rabbitmq-from-keda').spec.ingress[0].ports.push({ port: 5672 });
  expectFailure(objects, MANAGEMENT, /ns:keda reaches 5672: only the management API, 15672/);
  objects = withComponent('keda');
  named(objects, 'NetworkPolicy', 'rabbitmq-from-keda').spec.ingress[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'] = 'autoscaling';
  expectFailure(objects, 'overlays/production: KEDA\'s operator reaches RabbitMQ\'s management API', /no NetworkPolicy admits ns:keda to 15672/);
  expectFailure(objects, MANAGEMENT, /reachable from ns:autoscaling/);
});

test('a service\'s password from an optional Secret key (only keda\'s may be missing)', () => {
  const objects = withComponent('keda');
  const init = named(objects, 'StatefulSet', 'rabbitmq').spec.template.spec.initContainers[0];
  init.env.find((e) => e.name === 'RABBITMQ_GATEWAY_PASSWORD').valueFrom.secretKeyRef.optional = true;
  expectFailure(objects, "rabbitmq: the definitions' passwords come from the Secret", /user gateway: the Secret key RABBITMQ_GATEWAY_PASSWORD is optional/);
});

test('a keda user that may do more than read the API, or another user beside it', () => {
  const perm = (d) => d.permissions.find((p) => p.user === 'keda');
  expectFailure(setDefinitions(withComponent('keda'), (d) => { d.users.find((u) => u.name === 'keda').tags = ['monitoring']; }),
    KEDA_USER, /tags monitoring, want management/);
  expectFailure(setDefinitions(withComponent('keda'), (d) => { perm(d).read = '^video$'; }), KEDA_USER, /read on \/ lets through video: want \^\$/);
  expectFailure(setDefinitions(withComponent('keda'), (d) => { d.permissions = d.permissions.filter((p) => p.user !== 'keda'); }),
    KEDA_USER, /no permissions entry on the vhost \//);
  expectFailure(setDefinitions(withComponent('keda'), (d) => { d.users = d.users.filter((u) => u.name !== 'keda'); }), KEDA_USER, /missing/);
  expectFailure(setDefinitions(withComponent('keda'), (d) => { d.users.push({ name: 'grafana', password: '@RABBITMQ_PASSWORD@', tags: ['monitoring'] }); }),
    "rabbitmq: no user but the services', KEDA's and one administrator", /users grafana: no service logs in as them/);
});
