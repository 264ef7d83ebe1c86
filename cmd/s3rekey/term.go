package main

import (
	"io"
	"os"
)

// isTerminal reports whether w is a terminal, where progress is drawn in
// place; elsewhere it is printed as plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
