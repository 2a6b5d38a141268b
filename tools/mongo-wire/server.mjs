#!/usr/bin/env node
// The tests' MongoDB-wire server: CongoServer, the in-memory MongoDB wire-protocol server of @push.rocks/smartmongo
// 2.2.0 (MIT; its dist_ts/congodb), with batch-size.patch applied. It is not mongod: no authentication, no replica
// sets or transactions that mean anything, write concerns accepted and ignored, every query a scan of the whole
// collection. It speaks OP_MSG well enough for libmongoc's GridFS and CRUD, which is what the tests need
// (docs/testing.md, "GridFS tests").
//
//   node tools/mongo-wire/server.mjs [--host 127.0.0.1] [--data FILE] PORT
//
// PORT 0 picks a free port. Once it listens it prints one line to stdout:
//   mongo-wire: ready on mongodb://HOST:PORT
// SIGTERM or SIGINT closes every connection and exits with status 0. With --data, the databases are written to FILE
// (a sequence of BSON documents) then, and read back at the next start, so that a restart (scripts/harness-ctl)
// keeps them, as it keeps a MariaDB's or RabbitMQ's; a server that is killed loses them. Error replies (a command
// that threw, a reply that did not encode) are logged to stderr.
//
// Installed by tools/mongo-wire/install (npm ci, exact versions in package-lock.json); started for the tests by
// scripts/with-servers (scripts/services.toml, [servers.mongodb]).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const congodb = path.join(here, 'node_modules/@push.rocks/smartmongo/dist_ts/congodb');
const usage = 'usage: node tools/mongo-wire/server.mjs [--host HOST] [--data FILE] PORT   (PORT 0: a free one)';

function die(message, status = 2) {
    console.error(`mongo-wire: ${message}`);
    process.exit(status);
}

function parseArgs(argv) {
    const options = { host: '127.0.0.1', data: '', port: null };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '-h' || arg === '--help') {
            console.log(usage);
            process.exit(0);
        } else if (arg === '--host' || arg === '--data') {
            if (i + 1 >= argv.length) die(`${arg} needs a value\n${usage}`);
            options[arg.slice(2)] = argv[++i];
        } else if (arg === '--port' && i + 1 < argv.length) {
            options.port = argv[++i];
        } else if (/^\d+$/.test(arg) && options.port === null) {
            options.port = arg;
        } else {
            die(`unexpected argument '${arg}'\n${usage}`);
        }
    }
    if (options.port === null || !/^\d+$/.test(options.port) || Number(options.port) > 65535) die(usage);
    options.port = Number(options.port);
    return options;
}

const options = parseArgs(process.argv.slice(2));

// Installed, and patched? (Without the patch, large GridFS reads fail with a protocol error: refuse to start.)
let findHandler;
try {
    findHandler = fs.readFileSync(path.join(congodb, 'server/handlers/FindHandler.js'), 'utf8');
} catch {
    die('not installed: run tools/mongo-wire/install (npm ci in tools/mongo-wire)');
}
if (!findHandler.includes('mp3converter patch (tools/mongo-wire/batch-size.patch)')) {
    die('batch-size.patch is not applied: run tools/mongo-wire/install');
}
const { CongoServer, WireProtocol, plugins } = await import(path.join(congodb, 'index.js'));
const { bson } = plugins;

// The server answers a command that threw with an error message; say which, for the log.
const encodeErrorResponse = WireProtocol.encodeErrorResponse;
WireProtocol.encodeErrorResponse = function (requestId, code, message, ...rest) {
    console.error(`mongo-wire: error reply: ${message}`);
    return encodeErrorResponse.call(this, requestId, code, message, ...rest);
};

// --data: the in-memory adapter's maps (database -> collection -> id -> document, and the index definitions),
// written as BSON documents: per collection {db, coll, indexes, count}, then its `count` documents as {k: id, d: doc}.
function load(storage, file) {
    let buffer;
    try {
        buffer = fs.readFileSync(file);
    } catch (e) {
        if (e.code === 'ENOENT') return 0;
        throw e;
    }
    let offset = 0;
    let documents = 0;
    const next = () => {
        const size = buffer.readInt32LE(offset);
        const doc = bson.deserialize(buffer.subarray(offset, offset + size));
        offset += size;
        return doc;
    };
    while (offset < buffer.length) {
        const { db, coll, indexes, count } = next();
        if (!storage.databases.has(db)) {
            storage.databases.set(db, new Map());
            storage.indexes.set(db, new Map());
        }
        const collection = new Map();
        for (let i = 0; i < count; i++) {
            const { k, d } = next();
            collection.set(k, d);
        }
        storage.databases.get(db).set(coll, collection);
        storage.indexes.get(db).set(coll, indexes);
        documents += count;
    }
    return documents;
}

function save(storage, file) {
    const temporary = `${file}.tmp`;
    const fd = fs.openSync(temporary, 'w', 0o600);
    let documents = 0;
    try {
        for (const [db, collections] of storage.databases) {
            for (const [coll, collection] of collections) {
                const indexes = storage.indexes.get(db)?.get(coll) ?? [];
                fs.writeSync(fd, bson.serialize({ db, coll, indexes, count: collection.size }));
                for (const [k, d] of collection) {
                    fs.writeSync(fd, bson.serialize({ k, d }));
                }
                documents += collection.size;
            }
        }
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
    return documents;
}

const server = new CongoServer({ host: options.host, port: options.port, storage: 'memory' });
if (options.data) {
    try {
        const n = load(server.getStorage(), options.data);
        if (n) console.log(`mongo-wire: ${n} documents read from ${options.data}`);
    } catch (e) {
        die(`cannot read ${options.data}: ${e.message}`, 1);
    }
}
try {
    await server.start();
} catch (e) {
    die(`cannot listen on ${options.host}:${options.port}: ${e.message}`, 1);
}
const { port } = server.server.address();
console.log(`mongo-wire: ready on mongodb://${options.host}:${port}`);

let stopping = false;
async function stop(signal) {
    if (stopping) return;
    stopping = true;
    setTimeout(() => die(`still stopping 10 s after ${signal}, exiting`, 1), 10000).unref();
    const connections = server.getConnectionCount();
    await server.stop();
    let saved = '';
    if (options.data) {
        try {
            saved = `, ${save(server.getStorage(), options.data)} documents written to ${options.data}`;
        } catch (e) {
            die(`cannot write ${options.data}: ${e.message}`, 1);
        }
    }
    console.log(`mongo-wire: stopped on ${signal} (${connections} connections closed${saved})`);
    process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => stop(signal));
