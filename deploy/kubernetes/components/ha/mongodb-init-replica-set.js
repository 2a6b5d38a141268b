// components/ha: run by mongodb-init-replica-set.sh (the Job mongodb-init) with mongosh, connected to mongodb-0.
//
// 1. rs.initiate with the three members, only if replSetGetStatus says the set was never initiated (NotYetInitialized,
//    code 94). An initiated set (whatever its state) is left alone: members are never added, removed or reconfigured
//    here.
// 2. Waits for a primary, then runs base/mongodb-initdb.js against it (the services' user mp3converter, readWrite on
//    videos and mp3s), with majority write concern. That script creates the user only if it is missing: it takes effect
//    once, after the set's first initiation (or after a restore without it), and does nothing at later runs.
// Logs in as root (MONGO_ROOT_PASSWORD), which every member's first start made (mongodb-statefulset.yaml).
const readSecret = (file) => require('fs').readFileSync(file, 'utf8').replace(/\r?\n$/, '');
const rootPassword = readSecret('/run/secrets/mp3converter/mongo-root-password');
const setName = process.env.MONGODB_REPLICA_SET;
const members = process.env.MONGODB_MEMBERS.split(',');

db.getSiblingDB('admin').auth('root', rootPassword);

function replSetStatus() {
  try {
    return db.adminCommand({ replSetGetStatus: 1 });
  } catch (e) {
    return { ok: 0, code: e.code, codeName: e.codeName, errmsg: e.message };
  }
}

const current = replSetStatus();
if (current.ok === 1) {
  print(`mongodb-init: replica set ${current.set} already initiated (${current.members.map((m) => `${m.name} ${m.stateStr}`).join(', ')}): nothing to initiate`);
} else if (current.code === 94) {
  const config = { _id: setName, members: members.map((host, i) => ({ _id: i, host })) };
  print(`mongodb-init: initiating replica set ${setName}: ${members.join(', ')}`);
  const result = rs.initiate(config);
  if (result.ok !== 1) throw new Error(`rs.initiate: ${JSON.stringify(result)}`);
} else {
  throw new Error(`replSetGetStatus on ${members[0]}: ${current.codeName || current.code}: ${current.errmsg}`);
}

// The set's primary, whichever member it is (an election may follow the initiation).
let primary = null;
for (let i = 0; i < 90 && !primary; i++) {
  primary = db.hello().primary || null;
  if (!primary) sleep(2000);
}
if (!primary) throw new Error('mongodb-init: no primary after 3 minutes');
print(`mongodb-init: primary ${primary}`);

const setUrl = `mongodb://root:${encodeURIComponent(rootPassword)}@${members.join(',')}/admin?replicaSet=${setName}&w=majority`;
db = connect(setUrl);
load('/docker-entrypoint-initdb.d/10-mp3converter.js');
print('mongodb-init: done');
