// The compose file's first service: chooses the RabbitMQ user and password once, so that a bare
// `docker compose up` needs no credentials in the file, in the shell or in an .env file.
//
// Writes into the `credentials` volume (mounted at /credentials):
//   10-pipeline.conf   the broker's configuration (RabbitMQ mounts the volume as its conf.d):
//                      its listeners and the user it creates when its data volume is new
//   amqp-url           the URL both apps connect with (their command reads it when RABBITMQ_URL is empty)
// The user and password come from RABBITMQ_USER and RABBITMQ_PASSWORD when set; else the user is
// `pipeline` and the password 32 random bytes, generated on the first run and kept afterwards.
'use strict';
const { randomBytes } = require('node:crypto');
const { existsSync, writeFileSync, renameSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.CREDENTIALS_DIR || '/credentials';
const urlFile = join(dir, 'amqp-url');
const chosen = process.env.RABBITMQ_PASSWORD;

if (existsSync(urlFile) && !chosen) {
  console.log(`credentials: kept from an earlier run (${urlFile})`);
  process.exit(0);
}

const user = process.env.RABBITMQ_USER || 'pipeline';
const password = chosen || randomBytes(32).toString('base64url');
for (const [name, value] of Object.entries({ RABBITMQ_USER: user, RABBITMQ_PASSWORD: password })) {
  // Both go into an amqp:// URL and a RabbitMQ .conf line unescaped.
  if (!/^[A-Za-z0-9._~-]+$/.test(value)) {
    console.error(`credentials: ${name} may hold only letters, digits and - _ . ~`);
    process.exit(1);
  }
}

/** Written beside, then renamed: a reader never sees half a file. */
function writeAtomically(file, text) {
  writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

writeAtomically(
  join(dir, '10-pipeline.conf'),
  [
    'listeners.tcp.default = 5672',
    'management.tcp.port = 15672',
    `default_user = ${user}`,
    `default_pass = ${password}`,
    '',
  ].join('\n'),
);
writeAtomically(urlFile, `amqp://${user}:${password}@rabbitmq:5672\n`);
console.log(
  `credentials: RabbitMQ user "${user}"; the password is in the credentials volume ` +
    '(`docker compose run --rm credentials cat /credentials/amqp-url`)',
);
