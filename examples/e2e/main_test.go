// Package e2e runs the chi, echo and gin examples as the programs they are:
// each is built once, started on 127.0.0.1:0 and stopped with SIGINT, and
// driven by a real browser (browser_test.go) or by HTTP against a second
// EHR given by flags (realehr_test.go).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// examples are the example programs, by name, in every table.
var examples = []string{"chi", "echo", "gin"}

// binDir holds the example binaries that TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "smart-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	args := append([]string{"build"}, buildFlags...)
	args = append(args, "-o", dir+string(filepath.Separator))
	for _, name := range examples {
		args = append(args, "github.com/fhirware/smart/examples/"+name)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the examples:", err)
		return 1
	}
	return m.Run()
}

// goTool returns the go command: the one in $GOROOT/bin when the go
// command that runs the tests has set GOROOT, else the one on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// app is a running example.
type app struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    lockedBuffer // stdout and stderr
	exited chan struct{}

	// From the startup lines.
	OpenURL   string // the sandbox's patient list, when the sandbox runs
	LaunchURL string // the launch URL, when issuers are given
	BaseURL   string // the app's URL: scheme, host and port
}

// The environment variables of the examples' flags, kept out of the
// children's environment so that the tests see only what they set.
var flagEnv = regexp.MustCompile(`^SMART_(ADDR|BASE_URL|ISSUER|CLIENT_ID|CLIENT_SECRET|PRIVATE_KEY|KID|SCOPE|STORE|STORE_KEY|INSECURE_HTTP)=`)

// start runs the example name with -addr 127.0.0.1:0, the args and the
// extra environment, waits for it to print where to go, and stops it with
// SIGINT when the test ends. The test fails if the example exits with an
// error or its output shows a data race.
func start(t *testing.T, name string, env []string, args ...string) *app {
	t.Helper()
	a := &app{t: t, name: name, exited: make(chan struct{})}
	a.cmd = exec.Command(filepath.Join(binDir, name), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	for _, kv := range os.Environ() {
		if !flagEnv.MatchString(kv) {
			a.cmd.Env = append(a.cmd.Env, kv)
		}
	}
	a.cmd.Env = append(a.cmd.Env, env...)
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Stderr = &a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go a.read(stdout, ready)
	t.Cleanup(a.stop)
	select {
	case <-ready:
	case <-a.exited:
		t.Fatalf("%s exited before serving:\n%s", name, a.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed no URL in 30s:\n%s", name, a.out.String())
	}
	return a
}

var (
	openLine   = regexp.MustCompile(`^Open (http://\S+) and click`)
	launchLine = regexp.MustCompile(`^Launch URL: +(http://\S+)/fhir/launch$`)
	appAttr    = regexp.MustCompile(`\bapp=(http://[^/ ]+)/fhir/`)
)

// read copies the example's stdout to a.out, notes the startup lines and
// closes ready once the URL to go to is printed.
func (a *app) read(r io.Reader, ready chan struct{}) {
	defer close(a.exited)
	sc := bufio.NewScanner(r)
	closed := false
	for sc.Scan() {
		line := sc.Text()
		a.out.WriteString(line + "\n")
		if m := appAttr.FindStringSubmatch(line); m != nil {
			a.BaseURL = m[1]
		}
		if m := openLine.FindStringSubmatch(line); m != nil {
			a.OpenURL = m[1]
		}
		if m := launchLine.FindStringSubmatch(line); m != nil {
			a.LaunchURL = m[1] + "/fhir/launch"
		}
		if !closed && (a.OpenURL != "" || a.LaunchURL != "") {
			closed = true
			close(ready)
		}
	}
	a.cmd.Wait()
}

// stop sends SIGINT and waits for a clean exit.
func (a *app) stop() {
	a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
		a.t.Errorf("%s did not stop within 15s of SIGINT", a.name)
	}
	out := a.out.String()
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		a.t.Errorf("%s exited with status %d:\n%s", a.name, code, out)
	}
	if strings.Contains(out, "DATA RACE") {
		a.t.Errorf("%s: data race:\n%s", a.name, out)
	}
	if a.t.Failed() {
		a.t.Logf("%s output:\n%s", a.name, out)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testContext returns a context that ends with the test or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
