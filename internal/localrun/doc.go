// Package localrun does what Lambda's SQS event source mapping does, in
// process: it long-polls queues, gathers batches (batch size, batching
// window and the 6 MB payload; batching.go), invokes a handler with an
// events.SQSEvent under an invocation timeout, deletes what succeeded and
// leaves batch item failures to their visibility timeout. It drives the real handlers against the emulator in
// tests and the demo, and lets users run the pipeline without Lambda, on a
// laptop or a server, against real AWS.
package localrun
