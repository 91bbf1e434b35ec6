#!/usr/bin/env bash
# Validates the compose files with compose itself (Debian's docker-compose, or the Docker CLI's
# compose plugin). No engine is needed. npm test checks docker-compose.yml's content without compose.
#   docker-compose.yml          one broker, the api, the consumer
#   docker-compose.cluster.yml  a three-node RabbitMQ cluster with quorum queues (docs/cluster.md):
#                               valid with its secrets set, refused without them, loopback ports only
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v docker-compose >/dev/null; then
  compose() { docker-compose "$@"; }
elif docker compose version >/dev/null 2>&1; then
  compose() { docker compose "$@"; }
else
  echo "check:compose needs docker-compose (apt-get install -y docker-compose) or Docker's compose plugin" >&2
  exit 1
fi

# Checked against the environment alone, whatever a local .env holds.
no_env="$(mktemp)"
trap 'rm -f "$no_env"' EXIT

# A bare `docker compose up` needs nothing from the shell or an .env file (the credentials service
# chooses the RabbitMQ password); the values .env.example shows are accepted too.
(
  unset RABBITMQ_USER RABBITMQ_PASSWORD RABBITMQ_URL
  compose --env-file "$no_env" config -q
)
compose --env-file .env.example config -q
echo "docker-compose.yml is valid"

CLUSTER=docker-compose.cluster.yml
# The cluster file has no default secrets: without them compose must refuse it.
if (
  unset RABBITMQ_ERLANG_COOKIE RABBITMQ_USER RABBITMQ_PASSWORD
  compose --env-file "$no_env" -f "$CLUSTER" config -q >/dev/null 2>&1
); then
  echo "$CLUSTER must refuse to run without RABBITMQ_ERLANG_COOKIE, RABBITMQ_USER and RABBITMQ_PASSWORD" >&2
  exit 1
fi
resolved="$(RABBITMQ_ERLANG_COOKIE=check-cookie RABBITMQ_USER=check-user RABBITMQ_PASSWORD=check-password \
  compose --env-file "$no_env" -f "$CLUSTER" config)"
# Every published port is bound to the loopback interface, never to all interfaces.
printf '%s\n' "$resolved" | node -e '
  const { parse } = require("yaml");
  const config = parse(require("node:fs").readFileSync(0, "utf8"));
  const open = Object.entries(config.services).flatMap(([name, service]) =>
    (service.ports ?? [])
      .filter((port) => (typeof port === "string" ? !port.startsWith("127.0.0.1:") : port.host_ip !== "127.0.0.1"))
      .map((port) => `${name}: ${JSON.stringify(port)}`),
  );
  if (open.length > 0) {
    console.error(`'"$CLUSTER"' publishes ports on every interface:\n${open.join("\n")}`);
    process.exit(1);
  }
'
for service in api consumer; do
  block="$(printf '%s\n' "$resolved" | sed -n "/^  $service:/,/^  [a-z]/p")"
  grep -q "QUEUE_TYPE: quorum" <<<"$block" || {
    echo "$CLUSTER: $service must run with QUEUE_TYPE=quorum" >&2
    exit 1
  }
  grep -q "RABBITMQ_URL: amqp://check-user:check-password@rabbitmq-1:5672,amqp://check-user:check-password@rabbitmq-2:5672,amqp://check-user:check-password@rabbitmq-3:5672" <<<"$block" || {
    echo "$CLUSTER: $service must get the three nodes in RABBITMQ_URL" >&2
    exit 1
  }
done
echo "$CLUSTER is valid"
