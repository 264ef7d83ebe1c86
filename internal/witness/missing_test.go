package witness

import (
	"strings"
	"testing"
)

// Without moto the witness tests fail, naming the command they need.
func TestMissingMotoNamesIt(t *testing.T) {
	saved := motoCommand
	t.Cleanup(func() { motoCommand = saved })
	motoCommand = []string{"python3-not-installed-here", "-m", "moto.server", "-H", "127.0.0.1", "-p"}
	_, err := startMoto()
	if err == nil || !strings.Contains(err.Error(), "python3-not-installed-here -m moto.server") {
		t.Fatalf("starting a missing moto: %v, want an error naming the command", err)
	}
}
