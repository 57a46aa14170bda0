-- A database made by calderwood before core:002-commands-by-key (commit 3b83f6a~1,
-- `calderwood user add --email ada@example.org`, password old-release-pass), as
-- `sqlite3 calderwood.db .dump` prints it. tests/upgrade/run.sh upgrades it. Never edit.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations ( id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);
INSERT INTO schema_migrations VALUES('core:001-log',1796216878654106);
INSERT INTO schema_migrations VALUES('accounts:001-users',1796216878660717);
INSERT INTO schema_migrations VALUES('accounts:002-sessions',1796216878663997);
INSERT INTO schema_migrations VALUES('demo:001-page-views',1796216878668002);
INSERT INTO schema_migrations VALUES('demo:002-cart',1796216878670466);
CREATE TABLE events ( position INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, command_uuid TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL, user_uuid TEXT, client_id TEXT, client_seq INTEGER, recorded_at INTEGER NOT NULL);
INSERT INTO events VALUES(1,'01a236de-7782-7035-999f-82e38deb4bab','01a236de-7781-700f-b5aa-0e41e3fc9c8d','user-registered',1,'{"user_uuid":"01a236de-7782-7034-a42f-ee58a2ba4604","email":"ada@example.org","first_name":"Ada","last_name":"Lovelace","password_hash":"$argon2id$v=19$m=65536,t=2,p=1$+GzJbkRt63Yecmo6wZ95JQ$CnTS2dTh23XYJFJrVDVaVZ64ILCPPfbqN13BQ9HMqjY"}','{}',NULL,'cli:01a236de-777f-7037-9c79-fd67399e761b',0,1796216878978089);
CREATE TABLE commands ( uuid TEXT PRIMARY KEY, user_uuid TEXT NOT NULL, client_id TEXT NOT NULL, client_seq INTEGER NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL, received_at INTEGER NOT NULL, outcome TEXT NOT NULL, first_position INTEGER, last_position INTEGER, reject_code TEXT, reject_message TEXT, UNIQUE (user_uuid, client_id, client_seq));
INSERT INTO commands VALUES('01a236de-7781-700f-b5aa-0e41e3fc9c8d','','cli:01a236de-777f-7037-9c79-fd67399e761b',0,'register-user','{"email":"ada@example.org","first_name":"Ada","last_name":"Lovelace","password_hash":"$argon2id$v=19$m=65536,t=2,p=1$+GzJbkRt63Yecmo6wZ95JQ$CnTS2dTh23XYJFJrVDVaVZ64ILCPPfbqN13BQ9HMqjY"}','{}',1796216878977388,'ok',1,1,NULL,NULL);
CREATE TABLE users ( user_uuid TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, first_name TEXT NOT NULL, last_name TEXT NOT NULL, password_hash TEXT NOT NULL, registered_at BIGINT NOT NULL, position BIGINT NOT NULL);
INSERT INTO users VALUES('01a236de-7782-7034-a42f-ee58a2ba4604','ada@example.org','Ada','Lovelace','$argon2id$v=19$m=65536,t=2,p=1$+GzJbkRt63Yecmo6wZ95JQ$CnTS2dTh23XYJFJrVDVaVZ64ILCPPfbqN13BQ9HMqjY',1796216878978089,1);
CREATE TABLE sessions ( session_uuid TEXT PRIMARY KEY, user_uuid TEXT NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT, position BIGINT NOT NULL);
CREATE TABLE page_views ( position BIGINT PRIMARY KEY, url TEXT NOT NULL, user_uuid TEXT, recorded_at BIGINT NOT NULL);
CREATE TABLE cart_items ( user_uuid TEXT NOT NULL, sku TEXT NOT NULL, quantity BIGINT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (user_uuid, sku));
CREATE TABLE carts ( user_uuid TEXT PRIMARY KEY, position BIGINT NOT NULL);
CREATE INDEX events_by_user ON events(user_uuid, position);
CREATE INDEX sessions_by_user ON sessions(user_uuid);
COMMIT;
