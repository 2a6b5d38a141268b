// deploy/monitoring: the schemas of its PodMonitors and PrometheusRule (@kubernetes-models/prometheus-operator) and
// the monitoring rules (monitoring.js: what is scraped and queried exists, the alerts are complete), against the
// repository's files, then against copies broken one way at a time: each must be caught by its rule. Run by
// scripts/check-manifests:
//   node --test tools/manifest-check/test/
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { validateSchema } = require('../schema');
const { checkMonitoring, promqlMetricNames, dashboardExprs } = require('../monitoring');
const { baseObjects, monitoringObjects, failuresOf, named, failureExpecter } = require('../base-objects');

const repo = path.join(__dirname, '..', '..', '..');
const workloads = baseObjects();
function failures(objects) {
  return failuresOf([(t, objs) => objs.forEach((o) => validateSchema(t, o)), (t, objs) => checkMonitoring(t, objs, { repo, workloads })], objects);
}
const rules = (objects) => named(objects, 'PrometheusRule', 'mp3converter').spec.groups;
const alert = (objects, name) => rules(objects).flatMap((g) => g.rules).find((r) => r.alert === name);
const dashboardMap = (objects) => named(objects, 'ConfigMap', 'mp3converter-grafana-dashboard');
function withDashboard(objects, change) {
  const cm = dashboardMap(objects);
  const d = JSON.parse(cm.data['mp3converter.json']);
  change(d);
  cm.data['mp3converter.json'] = JSON.stringify(d);
  return objects;
}
const expectFailure = failureExpecter(failures);
const EXISTS = 'monitoring: the alerts and the dashboard query only metrics that exist';
const SCRAPED = "monitoring: PodMonitors scrape every service's admin port and RabbitMQ's per-queue metrics";

test('PromQL: the metric names, without functions, label names and values, ranges and variables', () => {
  const names = (e) => [...promqlMetricNames(e)].sort();
  assert.deepStrictEqual(names('histogram_quantile(0.9, sum by (le, route) (rate(a_bucket{route=~"/x{y}|z", q="b c"}[$__rate_interval])))'), ['a_bucket']);
  assert.deepStrictEqual(names('(sum by (queue) (x{queue=~".+\\\\.dead"}) > 0) and on (queue) (sum(y) by (queue) == 0)'), ['x', 'y']);
  assert.deepStrictEqual(names('a - b offset 5m > 1e3 unless c @ start() or bool d'), ['a', 'b', 'c', 'd']);
  assert.deepStrictEqual(names('label_replace(up, "dst", "$1", "src", "(.*)") # a comment with fake_metric'), ['up']);
  assert.deepStrictEqual(dashboardExprs({ panels: [{ panels: [{ targets: [{ expr: 'a' }] }] }],
    templating: { list: [{ type: 'query', query: { query: 'label_values(b{x="y"}, namespace)' } }, { type: 'textbox', query: 'c' }] } }), ['a', 'b{x="y"}']);
});

test('deploy/monitoring passes every schema and monitoring rule', () => {
  assert.deepStrictEqual(failures(monitoringObjects()), {});
});

test('a misspelt field of the PrometheusRule is refused by its schema', () => {
  const objects = monitoringObjects();
  const r = alert(objects, 'MP3ConverterDeadLetters');
  r.expresion = r.expr;
  delete r.expr;
  expectFailure(objects, 'schema: no unknown fields', /PrometheusRule\/mp3converter: \/spec\/groups\/1\/rules\/\d\/expresion: unknown field/);
  expectFailure(objects, "schema: valid against the Kubernetes OpenAPI schema (and the CRDs' schemas)", /expr/);
  const again = monitoringObjects();
  named(again, 'PodMonitor', 'mp3converter-services').spec.podMetricEndpoints = named(again, 'PodMonitor', 'mp3converter-services').spec.podMetricsEndpoints;
  expectFailure(again, 'schema: no unknown fields', /\/spec\/podMetricEndpoints: unknown field/);
});

test('an alert or a panel on a metric no service exports', () => {
  let objects = monitoringObjects();
  alert(objects, 'MP3ConverterJobsGaveUp').expr = 'sum(increase(converter_jobs_failed_total{namespace="mp3converter"}[30m])) > 0';
  expectFailure(objects, EXISTS, /MP3ConverterJobsGaveUp: converter_jobs_failed_total \(no service registers it/);
  objects = withDashboard(monitoringObjects(), (d) => { d.panels[1].targets[0].expr = 'sum(rate(gateway_upload_total[5m]))'; });
  expectFailure(objects, EXISTS, /mp3converter\.json: gateway_upload_total \(no service registers it/);
  // A histogram's series are its family's name with _bucket, _sum or _count; a counter's are not.
  objects = withDashboard(monitoringObjects(), (d) => { d.panels[1].targets[0].expr = 'sum(rate(converter_jobs_total_bucket[5m]))'; });
  expectFailure(objects, EXISTS, /converter_jobs_total_bucket/);
});

test('a RabbitMQ family that the PodMonitor does not ask for', () => {
  let objects = withDashboard(monitoringObjects(), (d) => {
    d.panels[1].targets[0].expr = 'max(rabbitmq_detailed_queue_consumer_utilisation{queue="video"})';
  });
  expectFailure(objects, EXISTS, /rabbitmq_detailed_queue_consumer_utilisation \(a RabbitMQ family the PodMonitor does not ask/);
  objects = monitoringObjects();
  named(objects, 'PodMonitor', 'mp3converter-rabbitmq').spec.podMetricsEndpoints[1].params.family = ['queue_coarse_metrics'];
  expectFailure(objects, EXISTS, /rabbitmq_detailed_queue_consumers/);
});

test('PodMonitors that miss a service\'s admin port or RabbitMQ\'s per-queue metrics', () => {
  let objects = monitoringObjects();
  named(objects, 'PodMonitor', 'mp3converter-services').spec.podMetricsEndpoints[0].port = 'http';
  expectFailure(objects, SCRAPED, /Deployment\/gateway: no PodMonitor selects its pods with port admin, path \/metrics/);
  objects = monitoringObjects();
  named(objects, 'PodMonitor', 'mp3converter-services').spec.selector.matchExpressions[0].values.pop();
  expectFailure(objects, SCRAPED, /Deployment\/notification/);
  objects = monitoringObjects();
  named(objects, 'PodMonitor', 'mp3converter-rabbitmq').spec.podMetricsEndpoints.pop();
  expectFailure(objects, SCRAPED, /StatefulSet\/rabbitmq: no PodMonitor selects its pods with port prometheus, path \/metrics\/detailed/);
  objects = monitoringObjects();
  delete named(objects, 'PodMonitor', 'mp3converter-services').spec.podTargetLabels;
  expectFailure(objects, 'monitoring: PodMonitors label the series with app.kubernetes.io/name (the queries\' per-service label)', /Deployment\/auth/);
});

test('an alert without a severity or a description, a dashboard without its sidecar label', () => {
  let objects = monitoringObjects();
  delete alert(objects, 'MP3ConverterServiceDown').labels;
  alert(objects, 'MP3ConverterDeadLetters').annotations.description = '';
  const f = failures(objects)['monitoring: every alert has a severity, a summary and a description'];
  assert.ok(f && f.length === 2, JSON.stringify(f));
  assert.match(f.join('\n'), /MP3ConverterServiceDown: severity undefined/);
  assert.match(f.join('\n'), /MP3ConverterDeadLetters: no description/);
  objects = monitoringObjects();
  delete dashboardMap(objects).metadata.labels.grafana_dashboard;
  expectFailure(objects, "monitoring: dashboards are labelled for Grafana's sidecar");
  objects = withDashboard(monitoringObjects(), (d) => { d.panels[2].datasource = { type: 'prometheus', uid: 'prometheus' }; });
  expectFailure(objects, 'monitoring: dashboards are JSON with a uid, a query in every panel', /panel "Bytes uploaded" does not use the datasource variable/);
});
