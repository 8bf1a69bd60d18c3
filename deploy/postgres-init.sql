-- One role per service, each the owner of its own database and nothing else:
-- a service cannot read another's tables even by mistake.
CREATE ROLE micro_auth LOGIN PASSWORD 'micro_auth';
CREATE ROLE micro_payments LOGIN PASSWORD 'micro_payments';
CREATE ROLE micro_ledger LOGIN PASSWORD 'micro_ledger';

CREATE DATABASE micro_auth OWNER micro_auth;
CREATE DATABASE micro_payments OWNER micro_payments;
CREATE DATABASE micro_ledger OWNER micro_ledger;

REVOKE ALL ON DATABASE micro_auth FROM PUBLIC;
REVOKE ALL ON DATABASE micro_payments FROM PUBLIC;
REVOKE ALL ON DATABASE micro_ledger FROM PUBLIC;
