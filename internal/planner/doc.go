// Package planner is the planner function's logic: it consumes the control
// queue and turns backfill jobs into object tasks on the work queue. An
// inventory job (a person's, the CLI's, or the S3 event of a
// manifest.checksum landing) fans out one file task per data file; a file
// task streams its file's rows through the policy's filter and enqueues the
// rest, many objects per message; a listing job pages through
// ListObjectsV2 or ListObjectVersions. Near the invocation deadline a task
// re-enqueues itself with the row offset or page token it reached, so work
// of any size finishes across invocations with no row lost. It never reads
// object data, only inventory files and listings.
package planner
