//go:build unix && !linux

package witness

import "syscall"

// motoProcAttr puts moto in a process group of its own, so that Stop ends
// it and whatever it spawned.
func motoProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
