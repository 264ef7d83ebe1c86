// Package budget holds s3rekey's request budgets — at most so many objects
// a second per managed bucket, and so many KMS requests a second per
// account — across every concurrent invocation of a deployment, not per
// invocation.
//
// Each process (a Lambda execution environment) is a member. While it
// sends requests under a budget it writes a heartbeat into the jobs table
// every interval, naming the budgets it uses, and reads everyone's; it
// then paces itself at the budget divided by the members using it. Members
// that stop sending drop out when their heartbeat expires, and the others
// speed up. The cost is two table requests per member per interval,
// whatever the rate.
//
// Requests marked Ahead (an upload's) go first: they do not wait behind
// the others, and the others yield them the slots they use, within the
// member at once and across members through the heartbeat (ahead.go).
package budget
