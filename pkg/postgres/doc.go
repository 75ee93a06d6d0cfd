// Package postgres adapts PostgreSQL, the store's real product database, to the store
// API: [Source] reads products (a product.Source on pgx v5), [Migrate] and [Seed]
// create the schema and load the sample catalog into it, and [Listener] hears of every
// committed change and passes the changed ids on, so that caches can drop them.
//
// The schema (sql/0001_products.sql) keeps, beside each product, a version bumped by a
// trigger on every change and the id of the transaction that made it. A second trigger
// sends NOTIFY "<schema>.product_changes" with the changed id. A Listener that loses
// its connection (a database restart, a failover, pg_terminate_backend) reconnects and
// asks what changed while it was away, from those transaction ids, so no change is
// lost to a gap: the catch-up is conservative and may drop a little more than changed.
//
// Errors are [*Error] values with a classified [Cause] (db_unavailable, db_timeout,
// ...) whose message is fixed and safe to show; the driver's error, which names hosts
// and users but never passwords, is in the Error's text for the log.
package postgres
