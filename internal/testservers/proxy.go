package testservers

import (
	"net"
	"sync"
	"testing"
	"time"
)

// TCPProxy stands between a client and a real server so that a test can
// take the server away and bring it back without restarting either.
type TCPProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	// thawed is closed while bytes pass; Freeze replaces it with an open
	// one, which Restore, Cut and Stall close.
	thawed chan struct{}
	done   chan struct{} // closed when the proxy closes
}

type proxyMode int

const (
	proxyForward proxyMode = iota // pass bytes both ways
	proxyCut                      // close every connection, at once
	proxyStall                    // accept connections, pass nothing
)

// NewTCPProxy listens on 127.0.0.1:0 and forwards to target until the test
// ends.
func NewTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{},
		thawed: make(chan struct{}), done: make(chan struct{})}
	close(p.thawed)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial instead of the server's.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones (they close at once).
func (p *TCPProxy) Cut() { p.setMode(proxyCut) }

// Stall drops every connection and holds new ones open without passing
// anything: a server that hangs.
func (p *TCPProxy) Stall() { p.setMode(proxyStall) }

// Freeze stops passing bytes on every connection, open or new, and keeps
// them all open: new connections are accepted and reach the server, but
// what either side sends is held. It is a server that hangs with its
// connections up, such as a Redis stopped with SIGSTOP. Restore passes
// the held bytes on.
func (p *TCPProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = proxyForward
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default: // frozen already
	}
}

// Restore forwards new connections again, and after Freeze passes on the
// bytes held.
func (p *TCPProxy) Restore() { p.setMode(proxyForward) }

func (p *TCPProxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m != proxyForward {
		p.closeConnsLocked()
	}
	p.thawLocked()
}

func (p *TCPProxy) thawLocked() {
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// waitThawed waits until bytes may pass, and reports false when the proxy
// closed first.
func (p *TCPProxy) waitThawed() bool {
	p.mu.Lock()
	thawed := p.thawed
	p.mu.Unlock()
	select {
	case <-thawed:
		return true
	case <-p.done:
		return false
	}
}

func (p *TCPProxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *TCPProxy) close() {
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	p.closeConnsLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers conns to be closed on Cut, Stall and close; it reports
// false, after closing them, when the proxy is no longer in mode want.
func (p *TCPProxy) track(want proxyMode, conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != want {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *TCPProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case proxyCut:
			client.Close()
		case proxyStall:
			p.track(proxyStall, client)
		case proxyForward:
			p.wg.Add(1)
			go p.forward(client)
		}
	}
}

func (p *TCPProxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(proxyForward, client, server) {
		return
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			client.Close()
			server.Close()
		})
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pipe(server, client)
		done()
	}()
	p.pipe(client, server)
	done()
}

// pipe copies from src to dst, holding what it read while the proxy is
// frozen.
func (p *TCPProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitThawed() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
