package witness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// motoCommand is how moto is started: the default python3's moto.server,
// listening on the loopback address only.
var motoCommand = []string{"python3", "-m", "moto.server", "-H", "127.0.0.1", "-p"}

// motoStartTimeout bounds the wait for moto to answer.
const motoStartTimeout = 60 * time.Second

var moto struct {
	once     sync.Once
	endpoint string
	err      error
	cmd      *exec.Cmd
	stderr   tail
}

// tail keeps the last bytes written to it: moto logs every request, and
// only the end matters when it fails to start.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// motoServer starts moto once per test binary and returns its endpoint.
func motoServer() (string, error) {
	moto.once.Do(func() { moto.endpoint, moto.err = startMoto() })
	return moto.endpoint, moto.err
}

func startMoto() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	args := append(append([]string(nil), motoCommand...), strconv.Itoa(port))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = &moto.stderr
	cmd.SysProcAttr = motoProcAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("cannot start %q (moto 5.2.1 is needed: pip install 'moto[server]==5.2.1'): %w", joined(args), err)
	}
	moto.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(motoStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			moto.cmd = nil
			return "", fmt.Errorf("%q exited before serving (%v): %s", joined(args), err, lastLines(moto.stderr.String()))
		default:
		}
		if resp, err := client.Get(endpoint + "/moto-api/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	Stop()
	return "", fmt.Errorf("%q did not answer on %s within %s", joined(args), endpoint, motoStartTimeout)
}

// Stop ends the moto server this binary started, if any.
func Stop() {
	if moto.cmd == nil || moto.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-moto.cmd.Process.Pid, syscall.SIGTERM)
	moto.cmd = nil
}

// Main runs a package's tests and stops moto after them: call it from the
// TestMain of every package that uses a witness.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

func joined(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a)
	}
	return b.String()
}

// lastLines is the end of moto's error output, for a failure message.
func lastLines(s string) string {
	const keep = 2000
	if len(s) > keep {
		s = s[len(s)-keep:]
	}
	if s == "" {
		return "no output"
	}
	return s
}
