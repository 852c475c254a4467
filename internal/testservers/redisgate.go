package testservers

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisGate stands between Redis clients and a real Redis and counts the
// commands that reach it, so that a test can count a request's round trips
// to the store rather than time them. While the gate is held (Hold), the
// commands pass to Redis but its answers are kept from the clients until
// Release: the commands a request sends while held are those it sends
// before any answer comes back, its first round trip.
type RedisGate struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	commands []string      // the name and first argument of each command
	open     chan struct{} // closed while answers pass
	arrived  chan struct{} // signalled at each command
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	closed   bool
	latency  time.Duration // added before each answer passes
}

// NewRedisGate listens on 127.0.0.1:0 and forwards to the Redis at target
// until the test ends. Clients must speak RESP arrays, as go-redis and
// redigo do.
func NewRedisGate(t testing.TB, target string) *RedisGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &RedisGate{ln: ln, target: target, open: make(chan struct{}),
		arrived: make(chan struct{}, 1), conns: map[net.Conn]struct{}{}}
	close(g.open)
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(g.close)
	return g
}

// Addr is the address clients dial instead of Redis's.
func (g *RedisGate) Addr() string { return g.ln.Addr().String() }

// Commands returns the commands that reached Redis so far, in order, each
// as its name and first argument (a key, for GET and SET).
func (g *RedisGate) Commands() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.commands...)
}

// Hold keeps Redis's answers from the clients until Release.
func (g *RedisGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default: // held already
	}
}

// SetLatency delays each of Redis's answers by d before it passes, as a
// network between the app and Redis would: for benchmarks of round trips.
func (g *RedisGate) SetLatency(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.latency = d
}

// Release passes the answers held, and those to come.
func (g *RedisGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// WaitCommands waits until at least n commands have reached Redis in all,
// and reports whether they did before ctx ended. The context only keeps a
// test from hanging when they never come; it measures nothing.
func (g *RedisGate) WaitCommands(ctx context.Context, n int) bool {
	for {
		g.mu.Lock()
		got := len(g.commands)
		g.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-g.arrived:
		case <-ctx.Done():
			return false
		}
	}
}

func (g *RedisGate) serve() {
	defer g.wg.Done()
	for {
		client, err := g.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", g.target, Timeout)
		if err != nil {
			client.Close()
			continue
		}
		if !g.track(client, server) {
			return
		}
		g.wg.Add(2)
		go func() {
			defer g.wg.Done()
			g.commandsTo(server, client)
			client.Close()
			server.Close()
		}()
		go func() {
			defer g.wg.Done()
			g.answersTo(client, server)
			client.Close()
			server.Close()
		}()
	}
}

func (g *RedisGate) track(conns ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		g.conns[c] = struct{}{}
	}
	return true
}

// commandsTo reads the client's commands, notes each and passes it on
// whole.
func (g *RedisGate) commandsTo(server net.Conn, client net.Conn) {
	r := bufio.NewReader(client)
	for {
		raw, name, err := readCommand(r)
		if err != nil {
			return
		}
		g.mu.Lock()
		g.commands = append(g.commands, name)
		g.mu.Unlock()
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		if _, err := server.Write(raw); err != nil {
			return
		}
	}
}

// answersTo passes Redis's answers to the client while the gate is open.
func (g *RedisGate) answersTo(client net.Conn, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			g.mu.Lock()
			open, latency := g.open, g.latency
			g.mu.Unlock()
			<-open
			if latency > 0 {
				time.Sleep(latency)
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings, and returns its bytes
// and its name with its first argument.
func readCommand(r *bufio.Reader) (raw []byte, name string, err error) {
	var b bytes.Buffer
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, "", err
	}
	b.Write(line)
	if len(line) < 3 || line[0] != '*' {
		return nil, "", fmt.Errorf("testservers: not a RESP array: %q", line)
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
	if err != nil || n < 1 {
		return nil, "", fmt.Errorf("testservers: not a RESP command: %q", line)
	}
	var parts []string
	for range n {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, "", err
		}
		b.Write(line)
		size, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		if err != nil || line[0] != '$' {
			return nil, "", fmt.Errorf("testservers: not a RESP bulk string: %q", line)
		}
		arg := make([]byte, size+2)
		if _, err := io.ReadFull(r, arg); err != nil {
			return nil, "", err
		}
		b.Write(arg)
		if len(parts) < 2 {
			parts = append(parts, string(arg[:size]))
		}
	}
	name = string(bytes.ToUpper([]byte(parts[0])))
	if len(parts) > 1 {
		name += " " + parts[1]
	}
	return b.Bytes(), name, nil
}

func (g *RedisGate) close() {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
	g.ln.Close()
	g.wg.Wait()
}
