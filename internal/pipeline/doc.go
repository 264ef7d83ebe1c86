// Package pipeline assembles s3rekey outside Lambda: the planner on the
// control queue and the encrypt function on the work queue, driven by the
// local run loop, with a tally of every outcome and of the function time
// the handlers used. The CLI's run and demo commands use it.
package pipeline
