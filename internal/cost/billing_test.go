package cost

import (
	"math"
	"testing"
	"time"
)

func TestBilledSecondsRoundsEachInvocation(t *testing.T) {
	cases := []struct {
		name      string
		durations []time.Duration
		want      float64
	}{
		{"none", nil, 0},
		{"a whole millisecond", []time.Duration{time.Millisecond}, 0.001},
		{"a part of one is one", []time.Duration{10 * time.Microsecond}, 0.001},
		{"zero is still an invocation", []time.Duration{0}, 0.001},
		{"rounded up, not to nearest", []time.Duration{1001 * time.Microsecond}, 0.002},
		{"each invocation apart", []time.Duration{400 * time.Microsecond, 400 * time.Microsecond, 400 * time.Microsecond}, 0.003},
		{"long", []time.Duration{2*time.Second + 300*time.Microsecond}, 2.001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := BilledSeconds(c.durations); math.Abs(got-c.want) > 1e-12 {
				t.Errorf("BilledSeconds = %v, want %v", got, c.want)
			}
		})
	}
}

func TestShareByWall(t *testing.T) {
	cases := []struct {
		name  string
		busy  time.Duration
		walls []time.Duration
		want  []time.Duration
	}{
		{"in proportion", 30 * time.Millisecond, []time.Duration{time.Second, 2 * time.Second}, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}},
		{"no wall time", time.Second, []time.Duration{0, 0}, []time.Duration{0, 0}},
		{"none", time.Second, nil, []time.Duration{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ShareByWall(c.busy, c.walls)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}
