package sessions_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
)

// The real servers the tests run against, named by environment variables.
// Without a variable the tests that need it skip; with CI=true they fail.
const (
	envRedis    = "SMART_TEST_REDIS_ADDR"   // host:port, e.g. 127.0.0.1:6379
	envPostgres = "SMART_TEST_POSTGRES_URL" // postgres://postgres@127.0.0.1:5432/smart_test?sslmode=disable
)

// serverFromEnv returns the value of the environment variable env, after
// checking that something answers at hostport(value). It skips the test when
// the variable is unset or the server unreachable, and fails it instead when
// CI=true.
func serverFromEnv(t *testing.T, env string, hostport func(string) (string, error)) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	v := os.Getenv(env)
	if v == "" {
		if ci {
			t.Fatalf("%s is not set; CI runs the tests against a real server", env)
		}
		t.Skipf("%s is not set; set it to run this test against a real server", env)
	}
	addr, err := hostport(v)
	if err == nil {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
	}
	if err != nil {
		if ci {
			t.Fatalf("%s=%s: server unreachable: %v", env, v, err)
		}
		t.Skipf("%s=%s: server unreachable: %v", env, v, err)
	}
	return v
}

func redisAddr(t *testing.T) string {
	t.Helper()
	return serverFromEnv(t, envRedis, func(v string) (string, error) { return v, nil })
}

func postgresURL(t *testing.T) string {
	t.Helper()
	return serverFromEnv(t, envPostgres, func(v string) (string, error) {
		cfg, err := pgxpool.ParseConfig(v)
		if err != nil {
			return "", err
		}
		return pgAddr(cfg), nil
	})
}

// uniquePrefix is a key prefix no other test, or test process sharing the
// server, uses.
func uniquePrefix(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "smart-test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// redigoStore returns a redisstore over a redigo pool dialling addr, closed
// when the test ends.
func redigoStore(t *testing.T, addr string) (scs.Store, *redigo.Pool) {
	t.Helper()
	pool := &redigo.Pool{
		MaxIdle:     4,
		IdleTimeout: time.Minute,
		Dial: func() (redigo.Conn, error) {
			return redigo.Dial("tcp", addr,
				redigo.DialConnectTimeout(2*time.Second),
				redigo.DialReadTimeout(2*time.Second),
				redigo.DialWriteTimeout(2*time.Second))
		},
	}
	t.Cleanup(func() { pool.Close() })
	return redisstore.New(pool), pool
}

// goredisStore returns a goredisstore over a go-redis client for addr,
// closed when the test ends. ContextTimeoutEnabled makes go-redis use the
// context's deadline on the connection.
func goredisStore(t *testing.T, addr string) (scs.Store, *goredis.Client) {
	t.Helper()
	client := goredis.NewClient(&goredis.Options{
		Addr:                  addr,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
		PoolSize:              8,
	})
	t.Cleanup(func() { client.Close() })
	return goredisstore.New(client), client
}

// deleteRedisKeys removes the keys under prefix when the test ends, through
// a connection of its own (the test's may be cut).
func deleteRedisKeys(t *testing.T, addr, prefix string) {
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "scs:session:"+prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
}

// pgPool returns a pgx pool for url, with the scs sessions table in place,
// closed when the test ends.
func pgPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.MaxConns = 8
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	createSessionsTable(t, ctx, pool)
	return pool
}

func pgAddr(cfg *pgxpool.Config) string {
	return net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
}

// proxiedPgPool returns a pgx pool for url that connects through a
// tcpProxy, closed when the test ends.
func proxiedPgPool(t *testing.T, url string) (*pgxpool.Pool, *tcpProxy) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, pgAddr(cfg))
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.Fallbacks = nil
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, proxy
}

// createSessionsTable creates scs's table if it is missing. The advisory
// lock keeps test processes that start together from racing on it.
func createSessionsTable(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{
		`SELECT pg_advisory_xact_lock(7302615)`,
		`CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// pgStore returns a pgxstore without its cleanup goroutine, so none outlives
// the test.
func pgStore(pool *pgxpool.Pool) scs.Store {
	return pgxstore.NewWithCleanupInterval(pool, 0)
}

// deletePostgresRows removes the rows under prefix when the test ends,
// through a pool of its own (the test's may be cut).
func deletePostgresRows(t *testing.T, url, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, `DELETE FROM sessions WHERE starts_with(token, $1)`, prefix); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
}

// tcpProxy stands between a client and a real server so that a test can
// take the server away and bring it back without restarting either.
type tcpProxy struct {
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

// newTCPProxy listens on 127.0.0.1:0 and forwards to target until the test
// ends.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial instead of the server's.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones (they close at once).
func (p *tcpProxy) Cut() { p.setMode(proxyCut) }

// Stall drops every connection and holds new ones open without passing
// anything: a server that hangs.
func (p *tcpProxy) Stall() { p.setMode(proxyStall) }

// Restore forwards new connections again.
func (p *tcpProxy) Restore() { p.setMode(proxyForward) }

func (p *tcpProxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m != proxyForward {
		p.closeConnsLocked()
	}
}

func (p *tcpProxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closeConnsLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers conns to be closed on Cut, Stall and close; it reports
// false, after closing them, when the proxy is no longer forwarding.
func (p *tcpProxy) track(want proxyMode, conns ...net.Conn) bool {
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

func (p *tcpProxy) serve() {
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

func (p *tcpProxy) forward(client net.Conn) {
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
