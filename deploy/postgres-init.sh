#!/bin/sh
# One role per service, each the owner of its own database and nothing else:
# a service cannot read another's tables even by mistake. The passwords come
# from the environment (see .env.example); none is written here.
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v auth_password="$MICRO_AUTH_DB_PASSWORD" \
    -v payments_password="$MICRO_PAYMENTS_DB_PASSWORD" \
    -v ledger_password="$MICRO_LEDGER_DB_PASSWORD" <<'SQL'
CREATE ROLE micro_auth LOGIN PASSWORD :'auth_password';
CREATE ROLE micro_payments LOGIN PASSWORD :'payments_password';
CREATE ROLE micro_ledger LOGIN PASSWORD :'ledger_password';

CREATE DATABASE micro_auth OWNER micro_auth;
CREATE DATABASE micro_payments OWNER micro_payments;
CREATE DATABASE micro_ledger OWNER micro_ledger;

REVOKE ALL ON DATABASE micro_auth FROM PUBLIC;
REVOKE ALL ON DATABASE micro_payments FROM PUBLIC;
REVOKE ALL ON DATABASE micro_ledger FROM PUBLIC;
SQL
