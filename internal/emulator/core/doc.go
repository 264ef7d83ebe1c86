// Package core is what every emulated service shares: AWS error answers in
// the JSON and XML protocols, reading the SigV4 credential scope, request
// ids, injected faults and latency, and request counters.
package core
