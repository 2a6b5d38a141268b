// Run by the mongo image's docker-entrypoint.sh (mongosh) on the first start only (an empty data volume), after it
// created the administrator from MONGO_INITDB_ROOT_USERNAME / MONGO_INITDB_ROOT_PASSWORD_FILE.
// The services' user "mp3converter" (STORAGE_URL=mongodb://mp3converter:...@mongodb:27017/admin) may read and
// write the GridFS databases videos and mp3s, and nothing else.
const passwordFile = '/run/secrets/mp3converter/mongo-app-password';
const password = fs.readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '');
if (password === '') {
  throw new Error('mp3converter: ' + passwordFile + ' is empty: fill MONGO_APP_PASSWORD in secrets.env');
}
const admin = db.getSiblingDB('admin');
if (admin.getUser('mp3converter') === null) {
  admin.createUser({
    user: 'mp3converter',
    pwd: password,
    roles: [
      { role: 'readWrite', db: 'videos' },
      { role: 'readWrite', db: 'mp3s' },
    ],
  });
  print('mp3converter: created the user mp3converter (readWrite on videos and mp3s)');
}
