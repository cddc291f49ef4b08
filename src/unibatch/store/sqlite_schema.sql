-- revision: 0018
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)
;
CREATE TABLE jobs (
	id VARCHAR(64) NOT NULL, 
	batch_id VARCHAR(64) NOT NULL, 
	provider VARCHAR(32) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	endpoint VARCHAR(64) NOT NULL, 
	phase VARCHAR(12) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	native_status VARCHAR(64), 
	provider_batch_id VARCHAR(255), 
	input_file_id VARCHAR(255), 
	output_file_id VARCHAR(255), 
	error_file_id VARCHAR(255), 
	request_count INTEGER NOT NULL, 
	byte_count BIGINT NOT NULL, 
	provider_completed INTEGER NOT NULL, 
	provider_failed INTEGER NOT NULL, 
	errors JSON NOT NULL, 
	submitted_at FLOAT, 
	finished_at FLOAT, 
	cancel_sent BOOLEAN NOT NULL, 
	submit_attempts INTEGER NOT NULL, 
	poll_count INTEGER NOT NULL, 
	transient_errors INTEGER NOT NULL, 
	last_error TEXT, 
	next_run_at FLOAT, 
	lease_owner VARCHAR(64), 
	lease_until FLOAT, mode VARCHAR(16) DEFAULT 'batch' NOT NULL, provider_cancelled INTEGER DEFAULT '0' NOT NULL, input_tokens BIGINT DEFAULT '0' NOT NULL, queue_wait TEXT, price TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(batch_id) REFERENCES batches (id)
)
;
CREATE TABLE requests (
	batch_id VARCHAR(64) NOT NULL, 
	seq INTEGER NOT NULL, 
	custom_id VARCHAR(512) NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	body BLOB NOT NULL, attempts INTEGER DEFAULT '1' NOT NULL, max_attempts INTEGER, cache_key BLOB, cache_hash BIGINT, 
	PRIMARY KEY (batch_id, seq), 
	FOREIGN KEY(batch_id) REFERENCES batches (id), 
	CONSTRAINT uq_requests_batch_custom_id UNIQUE (batch_id, custom_id)
)
;
CREATE TABLE gateway_batches (
	batch_id VARCHAR(64) NOT NULL, 
	key_id VARCHAR(64), 
	input_file_id VARCHAR(64), 
	completion_window VARCHAR(16) NOT NULL, 
	estimated_cost FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (batch_id)
)
;
CREATE TABLE gateway_files (
	id VARCHAR(64) NOT NULL, 
	key_id VARCHAR(64), 
	filename VARCHAR(255) NOT NULL, 
	purpose VARCHAR(32) NOT NULL, 
	bytes BIGINT NOT NULL, 
	created_at FLOAT NOT NULL, expires_at FLOAT, 
	PRIMARY KEY (id)
)
;
CREATE TABLE "batches" (
	id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	endpoint VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	submitted_at FLOAT, 
	finished_at FLOAT, 
	metadata JSON NOT NULL, 
	errors JSON NOT NULL, 
	cancel_requested BOOLEAN NOT NULL, 
	max_age FLOAT, 
	on_complete VARCHAR(255), 
	handler_state VARCHAR(8) NOT NULL, 
	handler_attempts INTEGER NOT NULL, 
	handler_error TEXT, 
	next_run_at FLOAT, 
	lease_owner VARCHAR(64), 
	lease_until FLOAT, 
	request_total INTEGER NOT NULL, 
	succeeded INTEGER NOT NULL, 
	errored INTEGER NOT NULL, 
	expired INTEGER NOT NULL, 
	cancelled INTEGER NOT NULL, 
	input_tokens BIGINT NOT NULL, 
	output_tokens BIGINT NOT NULL, 
	cached_tokens BIGINT NOT NULL, 
	reasoning_tokens BIGINT NOT NULL, 
	cost_input FLOAT NOT NULL, 
	cost_output FLOAT NOT NULL, cache_write_tokens BIGINT DEFAULT '0' NOT NULL, max_attempts INTEGER DEFAULT '1' NOT NULL, fallback_models JSON DEFAULT '[]' NOT NULL, stuck_after FLOAT, deadline FLOAT, deadline_switched_at FLOAT, webhooks JSON DEFAULT '[]' NOT NULL, cancel_requested_at FLOAT, max_cost FLOAT, estimated_cost FLOAT, 
	PRIMARY KEY (id)
)
;
CREATE TABLE gateway_output_sizes (
	batch_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	bytes BIGINT NOT NULL, 
	PRIMARY KEY (batch_id, kind)
)
;
CREATE TABLE gateway_idempotency (
	caller VARCHAR(64) NOT NULL, 
	idempotency_key VARCHAR(255) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	batch_id VARCHAR(64) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (caller, idempotency_key)
)
;
CREATE TABLE "gateway_usage" (
	batch_id VARCHAR(64) NOT NULL, 
	custom_id VARCHAR(512) NOT NULL, 
	job_id VARCHAR(64) DEFAULT '' NOT NULL, 
	key_id VARCHAR(64), 
	provider VARCHAR(32) NOT NULL, 
	model VARCHAR(128) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cached_tokens INTEGER NOT NULL, 
	reasoning_tokens INTEGER NOT NULL, 
	cost FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (batch_id, custom_id, job_id)
)
;
CREATE TABLE realtime_sends (
	batch_id VARCHAR(64) NOT NULL, 
	custom_id VARCHAR(512) NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	sends INTEGER NOT NULL, 
	first_sent_at FLOAT NOT NULL, 
	last_sent_at FLOAT NOT NULL, 
	PRIMARY KEY (batch_id, custom_id)
)
;
CREATE TABLE "results" (
	batch_id VARCHAR(64) NOT NULL, 
	custom_id VARCHAR(512) NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	status_code INTEGER, 
	row_id VARCHAR(255), 
	request_id VARCHAR(255), 
	error_code VARCHAR(64), 
	error_message TEXT, 
	retryable BOOLEAN NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cached_tokens INTEGER NOT NULL, 
	reasoning_tokens INTEGER NOT NULL, 
	cost_input FLOAT, 
	cost_output FLOAT, 
	body BLOB, 
	raw BLOB, 
	created_at FLOAT NOT NULL, 
	cache_write_tokens INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (batch_id, custom_id)
)
;
CREATE TABLE "attempts" (
	batch_id VARCHAR(64) NOT NULL, 
	custom_id VARCHAR(512) NOT NULL, 
	attempt INTEGER NOT NULL, 
	job_id VARCHAR(64) NOT NULL, 
	status VARCHAR(12) NOT NULL, 
	status_code INTEGER, 
	error_code VARCHAR(64), 
	error_message TEXT, 
	retryable BOOLEAN NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cached_tokens INTEGER NOT NULL, 
	reasoning_tokens INTEGER NOT NULL, 
	cache_write_tokens INTEGER NOT NULL, 
	cost_input FLOAT, 
	cost_output FLOAT, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (batch_id, custom_id, attempt)
)
;
CREATE TABLE queue_limits (
	provider VARCHAR(32) NOT NULL, 
	scope VARCHAR(128) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	learned BIGINT NOT NULL, 
	configured BIGINT, 
	learned_at FLOAT NOT NULL, 
	reason TEXT, 
	PRIMARY KEY (provider, scope, kind)
)
;
CREATE TABLE "gateway_keys" (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	key_hint VARCHAR(16) NOT NULL, 
	created_at FLOAT NOT NULL, 
	revoked_at FLOAT, 
	max_budget FLOAT, 
	cache BOOLEAN DEFAULT 0 NOT NULL, 
	cache_ttl FLOAT, 
	PRIMARY KEY (id), 
	UNIQUE (key_hash)
)
;
CREATE TABLE webhook_endpoints (
	id VARCHAR(64) NOT NULL, 
	key_id VARCHAR(64), 
	url TEXT NOT NULL, 
	secret VARCHAR(255) NOT NULL, 
	scope VARCHAR(8) NOT NULL, 
	created_at FLOAT NOT NULL, 
	revoked_at FLOAT, 
	PRIMARY KEY (id)
)
;
CREATE TABLE webhook_events (
	id VARCHAR(64) NOT NULL, 
	batch_id VARCHAR(64) NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	created_at FLOAT NOT NULL, 
	payload BLOB NOT NULL, 
	PRIMARY KEY (id)
)
;
CREATE TABLE webhook_deliveries (
	id VARCHAR(64) NOT NULL, 
	event_id VARCHAR(64) NOT NULL, 
	endpoint_id VARCHAR(64) NOT NULL, 
	batch_id VARCHAR(64) NOT NULL, 
	state VARCHAR(12) NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	last_status INTEGER, 
	last_error TEXT, 
	delivered_at FLOAT, 
	next_run_at FLOAT, 
	lease_owner VARCHAR(64), 
	lease_until FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_webhook_deliveries_event_endpoint UNIQUE (event_id, endpoint_id)
)
;
CREATE INDEX ix_batches_next_run_at ON batches (next_run_at)
;
CREATE INDEX ix_batches_status ON batches (status)
;
CREATE INDEX ix_gateway_batches_key_created ON gateway_batches (key_id, created_at)
;
CREATE INDEX ix_gateway_files_expires_at ON gateway_files (expires_at)
;
CREATE INDEX ix_gateway_files_key_created ON gateway_files (key_id, created_at)
;
CREATE INDEX ix_gateway_usage_key_model ON gateway_usage (key_id, provider, model)
;
CREATE INDEX ix_jobs_batch_id ON jobs (batch_id)
;
CREATE INDEX ix_jobs_due ON jobs (next_run_at) WHERE phase <> 'done'
;
CREATE INDEX ix_jobs_phase_next_run_at ON jobs (phase, next_run_at)
;
CREATE INDEX ix_jobs_realtime_finished ON jobs (provider, model, finished_at) WHERE mode = 'realtime'
;
CREATE INDEX ix_realtime_sends_job_id ON realtime_sends (job_id)
;
CREATE INDEX ix_requests_cache_hash ON requests (cache_hash) WHERE cache_hash IS NOT NULL
;
CREATE INDEX ix_requests_job_id ON requests (job_id, seq)
;
CREATE INDEX ix_webhook_deliveries_batch_id ON webhook_deliveries (batch_id)
;
CREATE INDEX ix_webhook_deliveries_state_next ON webhook_deliveries (state, next_run_at)
;
CREATE INDEX ix_webhook_endpoints_key_id ON webhook_endpoints (key_id)
;
CREATE INDEX ix_webhook_events_batch_id ON webhook_events (batch_id)
;
