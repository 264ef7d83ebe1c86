//go:build race

package jobs_test

// raceEnabled: the race detector slows every schedule several times over.
const raceEnabled = true
