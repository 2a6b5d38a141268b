// The egress and RabbitMQ-user rules (policy.js checkEgress, rabbitmq.js) against the base's own manifests, then
// against copies broken one way at a time: each must be caught by its rule. Run by scripts/check-manifests:
//   node --test tools/manifest-check/test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { checkEgress } = require('../policy');
const { checkRabbitmqUsers } = require('../rabbitmq');
const { baseObjects, failuresOf, named, failureExpecter, setDefinitions } = require('../base-objects');

function failures(objects) {
  return failuresOf([checkEgress, checkRabbitmqUsers], objects);
}

const without = (objects, kind, name) => objects.filter((o) => !(o.kind === kind && o.metadata.name === name));
// The ConfigMap that every service reads (mp3converter-common, with its generated name).
const commonConfigMap = (objects) => objects.find((o) => o.kind === 'ConfigMap' && /^mp3converter-common(-|$)/.test(o.metadata.name));
const expectFailure = failureExpecter(failures);

test('the base passes every egress and RabbitMQ-user rule', () => {
  assert.deepStrictEqual(failures(baseObjects()), {});
});

test('a pod not under a default deny of egress', () => {
  const objects = without(baseObjects(), 'NetworkPolicy', 'default-deny-egress');
  expectFailure(objects, 'networkpolicy: a default deny of egress');
  expectFailure(objects, 'networkpolicy: every pod is under a default deny of egress', /StatefulSet\/mysql/);
});

test('a workload without DNS', () => {
  expectFailure(without(baseObjects(), 'NetworkPolicy', 'allow-dns-egress'), 'networkpolicy: every workload can reach the cluster DNS',
    /Deployment\/converter: cannot reach kube-system's kube-dns on 53\/UDP and 53\/TCP/);
});

test('an ipBlock that does not except the metadata address', () => {
  const objects = baseObjects();
  const rule = named(objects, 'NetworkPolicy', 'notification-egress').spec.egress.find((r) => r.to[0].ipBlock);
  rule.to[0].ipBlock.except = rule.to[0].ipBlock.except.filter((c) => c !== '169.254.0.0/16');
  expectFailure(objects, 'networkpolicy: no egress rule reaches private ranges or the metadata address', /reaches 169\.254\.0\.0\/16/);
  expectFailure(objects, 'networkpolicy: each workload reaches only its own dependencies', /also reaches ip:0\.0\.0\.0\/0:all\/TCP; cannot reach internet/);
});

test('an ipBlock inside a private range, and one whose excepts cover it in pieces', () => {
  let objects = baseObjects();
  named(objects, 'NetworkPolicy', 'notification-egress').spec.egress.push({ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }] });
  expectFailure(objects, 'networkpolicy: no egress rule reaches private ranges or the metadata address', /10\.20\.0\.0\/16 reaches 10\.0\.0\.0\/8/);
  objects = baseObjects();
  const block = named(objects, 'NetworkPolicy', 'notification-egress').spec.egress.find((r) => r.to[0].ipBlock).to[0].ipBlock;
  block.except = block.except.filter((c) => c !== '10.0.0.0/8').concat(['10.0.0.0/9', '10.128.0.0/9']);
  assert.deepStrictEqual(failures(objects), {});
  block.except = block.except.filter((c) => c !== '10.128.0.0/9');
  expectFailure(objects, 'networkpolicy: no egress rule reaches private ranges or the metadata address', /10\.0\.0\.0\/8/);
});

test('an egress rule without destinations', () => {
  const objects = baseObjects();
  named(objects, 'NetworkPolicy', 'gateway-egress').spec.egress.push({ ports: [{ port: 443, protocol: 'TCP' }] });
  expectFailure(objects, 'networkpolicy: no egress rule reaches private ranges or the metadata address', /NetworkPolicy\/gateway-egress/);
  expectFailure(objects, 'networkpolicy: each workload reaches only its own dependencies', /also reaches \*:443\/TCP/);
});

test('a converter that may reach the internet or another service', () => {
  let objects = baseObjects();
  named(objects, 'NetworkPolicy', 'converter-egress').spec.egress.push(
    { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'] } }],
      ports: [{ port: 443, protocol: 'TCP' }] });
  expectFailure(objects, 'networkpolicy: the converters reach nothing outside the namespace', /reaches internet:443\/TCP/);
  objects = baseObjects();
  named(objects, 'NetworkPolicy', 'converter-egress').spec.egress.push(
    { to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'mysql' } } }], ports: [{ port: 3306, protocol: 'TCP' }] });
  expectFailure(objects, 'networkpolicy: each workload reaches only its own dependencies', /Deployment\/converter: also reaches mysql:3306\/TCP/);
  objects = without(baseObjects(), 'NetworkPolicy', 'converter-egress');
  expectFailure(objects, 'networkpolicy: each workload reaches only its own dependencies', /Deployment\/converter: cannot reach rabbitmq:5672\/TCP, mongodb:27017\/TCP/);
});

test('a service that logs in as another user', () => {
  const objects = baseObjects();
  const env = named(objects, 'Deployment', 'gateway').spec.template.spec.containers[0].env;
  env.find((e) => e.name === 'RABBITMQ_GATEWAY_PASSWORD').valueFrom.secretKeyRef.key = 'RABBITMQ_PASSWORD';
  env.find((e) => e.name === 'AMQP_URL').value = 'amqp://mp3converter:$(RABBITMQ_GATEWAY_PASSWORD)@rabbitmq:5672/';
  expectFailure(objects, 'rabbitmq: each service logs in as its own user', /Deployment\/gateway: AMQP_URL is amqp:\/\/mp3converter:/);
});

test('permissions wider or narrower than the service needs', () => {
  const perm = (d, user) => d.permissions.find((p) => p.user === user);
  const rule = "rabbitmq: each service's user has least-privilege permissions";
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'converter').read = '^(video|mp3)$'; }),
    rule, /permissions of converter: read also mp3/);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'notification').read = '.*'; }),
    rule, /permissions of notification: read also .*video/);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'auth').configure = '^amq\\.gen.*'; }),
    rule, /auth: configure also amq\.gen-/);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'gateway').configure = perm(d, 'auth').configure; }),
    rule, /gateway: configure not gateway\.status\.live\./);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'auth').write = '^amq\\.default$'; }),
    rule, /auth: write also amq\.default; not notification\.account\.in/);
  // The empty expression is RabbitMQ's "nothing", not JavaScript's "everything".
  assert.deepStrictEqual(failures(setDefinitions(baseObjects(), (d) => { perm(d, 'auth').configure = ''; })), {});
});

test("a user that may write to the default exchange, or another service's inbox", () => {
  const perm = (d, user) => d.permissions.find((p) => p.user === user);
  const rule = "rabbitmq: each service's user has least-privilege permissions";
  // As before the inboxes: the default exchange reaches every queue by its name (notification.account: mails).
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'converter').write = '^(amq\\.default|mp3\\.in|mp3c\\.status|video\\.retry)$'; }),
    rule, /permissions of converter: write also amq\.default$/m);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'converter').write = '^(mp3\\.in|mp3c\\.status|video\\.retry|notification\\.account\\.in)$'; }),
    rule, /permissions of converter: write also notification\.account\.in$/m);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'notification').write = '^(notification\\.[a-z]+\\.in|(mp3|notification\\.(failed|webhook|account))\\.retry)$'; }),
    rule, /permissions of notification: write also notification\.account\.in/);
  // A retry exchange is its queue's consumer's only.
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'converter').write = '^(mp3\\.in|mp3c\\.status|(video|mp3)\\.retry)$'; }),
    rule, /permissions of converter: write also mp3\.retry$/m);
});

test('a user that may configure or bind the topology', () => {
  const perm = (d, user) => d.permissions.find((p) => p.user === user);
  const rule = "rabbitmq: each service's user has least-privilege permissions";
  // The whole topology, as every service had while each declared it: it could delete any queue.
  const topology = '^(mp3c\\.(status|dead)|(video|mp3|gateway\\.status|notification\\.(failed|webhook|account))(\\.dead|\\.in|\\.retry)?|(video|mp3|notification\\.(failed|webhook|account))\\.retry\\.(5|30|120)s)$';
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'converter').configure = topology; }),
    rule, /permissions of converter: configure also mp3c\.status, mp3c\.dead, video\.in/);
  expectFailure(setDefinitions(baseObjects(), (d) => { perm(d, 'gateway').configure = `^(gateway\\.status\\.live\\.[0-9a-f]{12}|video)$`; }),
    rule, /permissions of gateway: configure also video$/m);
  // Write on notification.account and read on an exchange the converter writes to: it could bind the queue there.
  expectFailure(setDefinitions(baseObjects(), (d) => {
    perm(d, 'converter').write = '^(mp3\\.in|mp3c\\.status|video\\.retry|notification\\.account)$';
    perm(d, 'converter').read = '^(video|mp3\\.in)$';
  }), rule, /permissions of converter: write also notification\.account; read also mp3\.in/);
});

test('status events with another publisher\'s routing keys', () => {
  expectFailure(setDefinitions(baseObjects(), (d) => { d.topic_permissions.find((t) => t.user === 'converter').write = '^job\\..*$'; }),
    "rabbitmq: status events carry only their publisher's routing keys", /converter on mp3c\.status: write also job\.cancelled/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.topic_permissions = d.topic_permissions.filter((t) => t.user !== 'gateway'); }),
    "rabbitmq: status events carry only their publisher's routing keys", /gateway on mp3c\.status: none/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.topic_permissions.find((t) => t.user === 'gateway').read = '^job\\.failed$'; }),
    "rabbitmq: status events carry only their publisher's routing keys", /gateway on mp3c\.status: read also job\.failed; not job\.\*/);
  // The converter binds nothing: as when it declared the topology, its binding keys are too much now.
  expectFailure(setDefinitions(baseObjects(), (d) => { d.topic_permissions.find((t) => t.user === 'converter').read = '^job\\.(\\*|failed)$'; }),
    "rabbitmq: status events carry only their publisher's routing keys", /converter on mp3c\.status: read also job\.failed, job\.\*/);
  // No topic permissions for a user that binds to mp3c.status: RabbitMQ would allow every key.
  expectFailure(setDefinitions(baseObjects(), (d) => {
    d.topic_permissions = d.topic_permissions.filter((t) => t.user !== 'gateway');
  }), "rabbitmq: status events carry only their publisher's routing keys", /gateway on mp3c\.status: none/);
});

test('a service that declares the topology itself', () => {
  const rule = 'rabbitmq: the services leave the topology to the broker (AMQP_DECLARE_TOPOLOGY=false)';
  let objects = baseObjects();
  const common = commonConfigMap(objects);
  delete common.data.AMQP_DECLARE_TOPOLOGY;
  expectFailure(objects, rule, /Deployment\/auth: AMQP_DECLARE_TOPOLOGY is unset/);
  expectFailure(objects, rule, /Deployment\/notification: AMQP_DECLARE_TOPOLOGY is unset/);
  // The service's own variable wins over its ConfigMaps.
  objects = baseObjects();
  named(objects, 'Deployment', 'converter').spec.template.spec.containers[0].env.push({ name: 'AMQP_DECLARE_TOPOLOGY', value: 'on' });
  const f = failures(objects)[rule];
  assert.deepStrictEqual(f && f.length, 1, JSON.stringify(f));
  assert.match(f[0], /Deployment\/converter: AMQP_DECLARE_TOPOLOGY is 'on'/);
  // Any of libs/config's spellings of false.
  objects = baseObjects();
  commonConfigMap(objects).data.AMQP_DECLARE_TOPOLOGY = 'Off';
  assert.deepStrictEqual(failures(objects), {});
});

test('users: a literal password, a service user with tags, no administrator', () => {
  expectFailure(setDefinitions(baseObjects(), (d) => { d.users.find((u) => u.name === 'auth').password = 'hunter2'; }),
    "rabbitmq: the definitions' passwords come from the Secret", /user auth: a literal password/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.users.find((u) => u.name === 'converter').tags = ['administrator']; }),
    'rabbitmq: one user per service, and an administrator no service uses', /user converter: tags administrator/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.users = d.users.filter((u) => u.name !== 'mp3converter'); }),
    'rabbitmq: one user per service, and an administrator no service uses', /no administrator/);
  const objects = baseObjects();
  const init = named(objects, 'StatefulSet', 'rabbitmq').spec.template.spec.initContainers[0];
  init.env = init.env.filter((e) => e.name !== 'RABBITMQ_CONVERTER_PASSWORD');
  expectFailure(objects, "rabbitmq: the definitions' passwords come from the Secret", /user converter: the init container does not set RABBITMQ_CONVERTER_PASSWORD/);
});

test('definitions that are not loaded, or lack part of the topology', () => {
  let objects = baseObjects();
  const cm = named(objects, 'ConfigMap', 'rabbitmq-config');
  cm.data['90-mp3converter.conf'] = cm.data['90-mp3converter.conf'].replace(/^load_definitions.*$/m, '');
  expectFailure(objects, 'rabbitmq: the broker loads its definitions at every boot', /no load_definitions/);
  objects = baseObjects();
  named(objects, 'StatefulSet', 'rabbitmq').spec.template.spec.initContainers = [];
  expectFailure(objects, 'rabbitmq: the broker loads its definitions at every boot', /no init container writes \/etc\/rabbitmq\/definitions/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.queues = d.queues.filter((q) => q.name !== 'notification.account.retry.5s'); }),
    "rabbitmq: the definitions declare the services' topology", /queue notification\.account\.retry\.5s .* is missing/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.queues.find((q) => q.name === 'video.retry.30s').arguments['x-message-ttl'] = 3000; }),
    "rabbitmq: the definitions declare the services' topology", /queue video\.retry\.30s .* differs/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.bindings.pop(); }),
    "rabbitmq: the definitions declare the services' topology", /bindings: not/);
});

test('definitions without an inbox or a retry exchange, or with a binding that reaches another queue', () => {
  const rule = "rabbitmq: the definitions declare the services' topology";
  expectFailure(setDefinitions(baseObjects(), (d) => { d.bindings = d.bindings.filter((b) => b.source !== 'notification.account.in'); }),
    rule, /bindings: not notification\.account\.in -> notification\.account \(notification\.account\)/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.exchanges = d.exchanges.filter((e) => e.name !== 'mp3.retry'); }),
    rule, /exchange mp3\.retry \(direct, durable, no arguments\) is missing/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.exchanges.find((e) => e.name === 'video.in').type = 'fanout'; }),
    rule, /exchange video\.in .* differs/);
  expectFailure(setDefinitions(baseObjects(), (d) => { d.bindings.find((b) => b.source === 'video.retry' && b.routing_key === '30s').routing_key = 'video.retry.30s'; }),
    rule, /bindings: also video\.retry -> video\.retry\.30s \(video\.retry\.30s\); not video\.retry -> video\.retry\.30s \(30s\)/);
  // The converter's inbox bound to account mails, queue to queue or through an exchange-to-exchange binding.
  expectFailure(setDefinitions(baseObjects(), (d) => {
    d.bindings.push({ source: 'mp3.in', vhost: '/', destination: 'notification.account', destination_type: 'queue', routing_key: 'mp3', arguments: {} });
  }), rule, /bindings: also mp3\.in -> notification\.account \(mp3\)/);
  expectFailure(setDefinitions(baseObjects(), (d) => {
    d.bindings.push({ source: 'mp3.in', vhost: '/', destination: 'notification.account.in', destination_type: 'exchange', routing_key: 'mp3', arguments: {} });
  }), rule, /bindings: also mp3\.in -> exchange notification\.account\.in \(mp3\)/);
  expectFailure(setDefinitions(baseObjects(), (d) => {
    d.exchanges.push({ name: 'mp3c.extra', vhost: '/', type: 'direct', durable: true, auto_delete: false, internal: false, arguments: {} });
  }), rule, /not the services': mp3c\.extra/);
});
