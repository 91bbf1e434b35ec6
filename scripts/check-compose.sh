#!/usr/bin/env bash
# Validates docker-compose.yml with compose itself (Debian's docker-compose, or the Docker CLI's
# compose plugin). No engine is needed. npm test checks the file's content without compose.
set -euo pipefail
cd "$(dirname "$0")/.."
# The file takes the RabbitMQ credentials from the environment or .env; without either, check it
# with the example values.
env_file=.env
[ -f "$env_file" ] || env_file=.env.example
if command -v docker-compose >/dev/null; then
  docker-compose --env-file "$env_file" config -q
elif docker compose version >/dev/null 2>&1; then
  docker compose --env-file "$env_file" config -q
else
  echo "check:compose needs docker-compose (apt-get install -y docker-compose) or Docker's compose plugin" >&2
  exit 1
fi
echo "docker-compose.yml is valid"
