// The SQLite store's schema, as the migrations that build it.
#include "coordinator/sqlite_migrations.h"

namespace perfgate {

namespace {

// Migration N brings the schema from version N to N+1. Append only.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY,
  suite_name TEXT NOT NULL,
  commit_sha TEXT NOT NULL,
  branch TEXT NOT NULL,
  state INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL DEFAULT 0,
  suite BLOB NOT NULL
);
CREATE TABLE cases (
  run_id TEXT NOT NULL REFERENCES runs(run_id),
  case_index INTEGER NOT NULL,
  name TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  agent_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, case_index)
);
CREATE TABLE leases (
  lease_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  case_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  granted_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX leases_by_state ON leases(state);
CREATE TABLE results (
  lease_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  case_index INTEGER NOT NULL,
  counted INTEGER NOT NULL,
  outcome INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  result BLOB NOT NULL
);
CREATE INDEX results_by_case ON results(run_id, case_index);
CREATE TABLE samples (
  lease_id TEXT NOT NULL,
  sample_index INTEGER NOT NULL,
  benchmark TEXT NOT NULL,
  metric TEXT NOT NULL,
  value REAL NOT NULL,
  unit TEXT NOT NULL,
  source TEXT NOT NULL
);
CREATE INDEX samples_by_key ON samples(benchmark, metric);
CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  pool TEXT NOT NULL,
  labels TEXT NOT NULL,
  host BLOB NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
)sql",
    // 2: leases remember the agent's pool, so history is per testbed.
    R"sql(
ALTER TABLE leases ADD COLUMN pool TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_branch ON runs(branch, created_at_ms);
)sql",
    // 3: the gate's verdict on a run.
    R"sql(
ALTER TABLE runs ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
)sql",
    // 4: a sample's A/B variant ('' for a plain run), so history can leave out the base side.
    R"sql(
ALTER TABLE samples ADD COLUMN variant TEXT NOT NULL DEFAULT '';
)sql",
    // 5: off the hot path. Samples are kept once (in the result); history
    // reads per-run medians by series, so its cost does not grow with the
    // runs stored; runs get a sequence number to key them compactly; pools
    // and case durations (for longest-first scheduling) get tables of their
    // own; Recover's query gets an index. The medians of stored runs are
    // computed here from the samples table, which then goes.
    R"sql(
ALTER TABLE runs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET seq = rowid;
CREATE UNIQUE INDEX runs_by_seq ON runs(seq);
CREATE INDEX runs_by_state ON runs(state);
CREATE TABLE series (
  series_id INTEGER PRIMARY KEY,
  branch TEXT NOT NULL,
  pool TEXT NOT NULL,
  benchmark TEXT NOT NULL,
  metric TEXT NOT NULL,
  source TEXT NOT NULL,
  UNIQUE (branch, pool, benchmark, metric, source)
);
CREATE TABLE run_medians (
  series_id INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  run_seq INTEGER NOT NULL,
  median REAL NOT NULL,
  PRIMARY KEY (series_id, created_at_ms, run_seq)
) WITHOUT ROWID;
CREATE TABLE pools (pool TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE case_durations (
  suite_name TEXT NOT NULL,
  case_name TEXT NOT NULL,
  pool TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY (suite_name, case_name, pool)
) WITHOUT ROWID;
INSERT INTO pools (pool) SELECT pool FROM sessions WHERE pool != '' UNION SELECT pool FROM leases WHERE pool != '';
CREATE TEMP TABLE history_values AS
  SELECT r.branch, l.pool, s.benchmark, s.metric, s.source, r.created_at_ms, r.seq, s.value
  FROM samples s
  JOIN results res ON res.lease_id = s.lease_id AND res.counted = 1
  JOIN leases l ON l.lease_id = s.lease_id
  JOIN runs r ON r.run_id = res.run_id
  WHERE s.variant IN ('', 'head');
INSERT INTO series (branch, pool, benchmark, metric, source)
  SELECT DISTINCT branch, pool, benchmark, metric, source FROM history_values;
INSERT INTO run_medians (series_id, created_at_ms, run_seq, median)
  SELECT series_id, created_at_ms, seq, AVG(value) FROM (
    SELECT se.series_id, v.created_at_ms, v.seq, v.value,
           ROW_NUMBER() OVER (PARTITION BY se.series_id, v.seq ORDER BY v.value) AS k,
           COUNT(*) OVER (PARTITION BY se.series_id, v.seq) AS n
    FROM history_values v
    JOIN series se ON se.branch = v.branch AND se.pool = v.pool AND se.benchmark = v.benchmark
                  AND se.metric = v.metric AND se.source = v.source)
  WHERE k IN ((n + 1) / 2, (n + 2) / 2)
  GROUP BY series_id, created_at_ms, seq;
DROP TABLE history_values;
DROP TABLE samples;
)sql",
    // 6: a stored case in a third of the bytes. A result is keyed by its
    // lease's row (a result belongs to exactly one lease); rows key runs by
    // their sequence number, not their text id; lease and session ids are
    // kept as their 16 random bytes; the host fingerprint is kept once in
    // `hosts`, and the result's case name, agent and pool (the lease's own)
    // and its samples' benchmark when it is the case's name are taken out of
    // it and put back on reading (sqlite_compact.h). Only
    // the queries' rows are indexed: active leases, counted results.
    R"sql(
CREATE TABLE hosts (
  host_id INTEGER PRIMARY KEY,
  host BLOB NOT NULL UNIQUE
);
INSERT INTO hosts (host)
  SELECT DISTINCT result_host(result) FROM results WHERE result_host(result) IS NOT NULL;
CREATE TABLE compact_cases (
  run_seq INTEGER NOT NULL,
  case_index INTEGER NOT NULL,
  name TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  agent_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_seq, case_index)
) WITHOUT ROWID;
INSERT INTO compact_cases (run_seq, case_index, name, state, attempts, error, agent_id)
  SELECT r.seq, c.case_index, c.name, c.state, c.attempts, c.error, c.agent_id
  FROM cases c JOIN runs r ON r.run_id = c.run_id;
CREATE TABLE compact_leases (
  lease_id BLOB NOT NULL UNIQUE,
  run_seq INTEGER NOT NULL,
  case_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  session_id BLOB NOT NULL,
  pool TEXT NOT NULL,
  state INTEGER NOT NULL,
  granted_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  counted INTEGER
);
INSERT INTO compact_leases (lease_id, run_seq, case_index, attempt, agent_id, session_id, pool, state, granted_at_ms,
                            expires_at_ms, counted)
  SELECT compact_id('lease', l.lease_id), r.seq, l.case_index, l.attempt, l.agent_id,
         compact_id('session', l.session_id), l.pool, l.state, l.granted_at_ms, l.expires_at_ms, res.counted
  FROM leases l
  JOIN runs r ON r.run_id = l.run_id
  LEFT JOIN results res ON res.lease_id = l.lease_id
  ORDER BY l.rowid;
CREATE TABLE lease_results (
  lease_key INTEGER PRIMARY KEY,
  outcome INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  result BLOB NOT NULL,
  stripped INTEGER NOT NULL,
  host_id INTEGER
);
INSERT INTO lease_results (lease_key, outcome, received_at_ms, result, stripped, host_id)
  SELECT cl.rowid, res.outcome, res.received_at_ms,
         stripped_result(res.result, IFNULL(c.name, ''), l.agent_id, l.pool),
         stripped_fields(res.result, IFNULL(c.name, ''), l.agent_id, l.pool),
         h.host_id
  FROM results res
  JOIN leases l ON l.lease_id = res.lease_id
  JOIN compact_leases cl ON cl.lease_id = compact_id('lease', res.lease_id)
  LEFT JOIN cases c ON c.run_id = res.run_id AND c.case_index = res.case_index
  LEFT JOIN hosts h ON h.host = result_host(res.result)
  ORDER BY cl.rowid;
DROP TABLE results;
DROP TABLE leases;
DROP TABLE cases;
ALTER TABLE compact_cases RENAME TO cases;
ALTER TABLE compact_leases RENAME TO leases;
CREATE INDEX leases_active ON leases(state) WHERE state = 1;
CREATE INDEX leases_counted ON leases(run_seq, case_index) WHERE counted = 1;
-- The results as the table of that name held them (result blobs stripped), for queries by hand.
CREATE VIEW results AS
  SELECT l.lease_id AS lease_id, r.run_id AS run_id, l.case_index AS case_index, l.counted AS counted,
         res.outcome AS outcome, res.received_at_ms AS received_at_ms, res.result AS result
  FROM lease_results res JOIN leases l ON l.rowid = res.lease_key JOIN runs r ON r.seq = l.run_seq;
)sql",
    // 7: a run's medians are written when it ends, from values the
    // coordinator keeps meanwhile (a row per result in every series' part of
    // run_medians cost a page write per value). An ended run is noted here
    // until they are all written, so a restart in between writes them.
    R"sql(
CREATE TABLE pending_summaries (run_seq INTEGER PRIMARY KEY);
)sql",
};

}  // namespace

std::span<const char* const> SqliteMigrations() { return kMigrations; }

}  // namespace perfgate
