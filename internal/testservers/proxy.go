package testservers

import (
	"io"
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
	p := &TCPProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
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

// Restore forwards new connections again.
func (p *TCPProxy) Restore() { p.setMode(proxyForward) }

func (p *TCPProxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m != proxyForward {
		p.closeConnsLocked()
	}
}

func (p *TCPProxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *TCPProxy) close() {
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
		io.Copy(server, client)
		done()
	}()
	io.Copy(client, server)
	done()
}
