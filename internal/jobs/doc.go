// Package jobs keeps the record of every backfill: one job per inventory
// report or listing, its state, exact counts by outcome, and a completion
// report in S3.
//
// # Task records
//
// A job's truth is one record per task, written once by the first
// delivery to commit the task and never changed; counts, state and report
// are derived from the records (Store.Get). The planner names each task
// by its unit (a data file, a listing range) and the position it starts
// at, and says where the unit's next task starts: a unit's records form a
// chain from its first task to its final one. A delivery's record holds
// the terminal outcomes of the task's own objects and lists the follow-ups
// it sent for the others (retries, objects the deadline left, dead
// letters), each named by a hash of its parent and content. What counts
// is what is reachable from the units' first tasks; a record a replay or
// a losing delivery left off the chain or off its parent's list counts
// nothing, so each object is counted once, by the task that holds it.
//
// A delivery claims a task before running it (Committer.Claim); only the
// claim holder writes the record, and only once. A follow-up runs only
// once its parent's record lists it. A batch's records commit in
// transactions of at most 49 records and one counter item per job, whose
// count of open tasks says when to derive the job and complete it.
//
// # Signed tasks
//
// Tracked tasks are signed with an HMAC key kept in the jobs table
// (Store.Sign, Store.Verify): a task s3rekey did not sign changes no job.
//
// # Reports
//
// Each record with rows to list has its own report part, written before
// the record and named by the task and the MD5 of its bytes; a dead letter
// has one for its objects as failed, left out once it is redriven and its
// own record counts. A job's completion writes manifest.json listing the
// parts of the counted records, and records on the job which records it
// lists.
package jobs
