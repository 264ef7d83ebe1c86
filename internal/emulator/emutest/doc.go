// Package emutest starts an emulator for one test, with real SDK clients
// pointed at it and helpers to create keys, buckets, objects and queues.
// Only tests import it.
package emutest
