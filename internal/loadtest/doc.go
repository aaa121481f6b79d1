// Package loadtest runs a fleet of simulated service instances and
// gateways against real 'rampart server' processes, to measure what a
// control plane costs and how it fails: CPU and memory of each server,
// how long a decision takes to reach every watcher, heartbeat and ingest
// latency; what happens when a replica is killed (every watcher moves to
// the other and misses no change, no acknowledged event is lost); and what
// a service cut off by a network partition keeps doing.
//
// The tests run a short form by default; -rampart.scale runs them at full
// size (1,000 instances and 10 gateways, 2 minutes of load, a 2-minute
// partition), -rampart.instances N another size, and -rampart.report FILE
// appends the figures as Markdown. They need PostgreSQL (RAMPART_TEST_POSTGRES,
// by default 127.0.0.1:5432) and, for the partition, root and the ip
// command; without them they are skipped, except in CI (CI=true).
package loadtest
