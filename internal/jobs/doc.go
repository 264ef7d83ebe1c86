// Package jobs keeps the record of every backfill: one job per inventory
// report or listing, its state, exact counts by outcome, and a completion
// report in S3.
//
// # Exact counts under at-least-once delivery
//
// The planner cuts each inventory file (or listing) into messages at
// positions that depend only on the rows: a new block every BlockRows rows
// (every page of a listing), and within a block a new message when the
// next object would not fit. A checkpoint waits for a block's end, so a
// replayed planner task makes the same messages with the same ids. Each
// message carries the planner's counts for its rows, and the last one of a
// file says how many rows the file had.
//
// The encrypt function commits what a batch did in one DynamoDB
// transaction: a record per message, conditional on the message not being
// committed already, and the counts of those messages added to one of the
// job's counter shards. A duplicate delivery, a replayed planner message
// or a manifest that arrived twice finds its record and counts nothing.
// A message's follow-ups (retries, objects the deadline left, dead
// letters) are sent before the commit and carry the committing delivery's
// token: a follow-up counts only if its parent's record holds that token,
// so the follow-ups of a delivery that lost the race are dropped.
//
// A job is complete when every file has reported its row count, every row
// has been counted, and every planned object has a terminal outcome.
//
// # Reports
//
// Each batch writes at most one report part per job (gzip CSV, SSE-KMS)
// before its commit, and the commit records it; when a commit makes the
// job complete, the manifest.json listing the committed parts with their
// MD5 is written. Parts of commits that lost a race are never listed.
package jobs
