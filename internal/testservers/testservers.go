// Package testservers connects tests to the real Redis and PostgreSQL
// servers named by environment variables, and keeps tests that share them
// apart.
//
// Without its variable a test that needs a server skips; with CI=true it
// fails instead, so CI never passes by skipping:
//
//	SMART_TEST_REDIS_ADDR=127.0.0.1:6379
//	SMART_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/smart_test?sslmode=disable
//
// Every test takes a UniquePrefix for its keys and rows, so packages run in
// parallel against one server never collide, and removes them when it ends.
package testservers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
)

// The environment variables that name the servers.
const (
	EnvRedis    = "SMART_TEST_REDIS_ADDR"   // host:port, e.g. 127.0.0.1:6379
	EnvPostgres = "SMART_TEST_POSTGRES_URL" // postgres://postgres@127.0.0.1:5432/smart_test?sslmode=disable
)

// fromEnv returns the value of the environment variable env, after
// checking that something answers at hostport(value). It skips the test
// when the variable is unset or the server unreachable, and fails it
// instead when CI=true.
func fromEnv(t testing.TB, env string, hostport func(string) (string, error)) string {
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

// RedisAddr returns the Redis address of EnvRedis, or skips (fails under
// CI=true) the test.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return fromEnv(t, EnvRedis, func(v string) (string, error) { return v, nil })
}

// PostgresURL returns the PostgreSQL URL of EnvPostgres, or skips (fails
// under CI=true) the test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return fromEnv(t, EnvPostgres, func(v string) (string, error) {
		cfg, err := pgxpool.ParseConfig(v)
		if err != nil {
			return "", err
		}
		return PgAddr(cfg), nil
	})
}

// Timeout is the dial, read and write timeout of the clients made here,
// except the proxied ones, whose tests cut the server on purpose.
const Timeout = 10 * time.Second

// UniquePrefix is a key prefix that no other test, or test process sharing
// the server, uses. It begins with "smart-test:" and ends with ":".
func UniquePrefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return "smart-test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// RedigoPool returns a redigo pool dialling addr, closed when the test
// ends. Its timeouts (Timeout) leave room for a machine loaded by parallel
// test runs.
func RedigoPool(t testing.TB, addr string) *redigo.Pool {
	t.Helper()
	pool := &redigo.Pool{
		MaxIdle:     4,
		IdleTimeout: time.Minute,
		Dial: func() (redigo.Conn, error) {
			return redigo.Dial("tcp", addr,
				redigo.DialConnectTimeout(Timeout),
				redigo.DialReadTimeout(Timeout),
				redigo.DialWriteTimeout(Timeout))
		},
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// GoredisClient returns a go-redis client for addr with Timeout as its
// timeouts, closed when the test ends. ContextTimeoutEnabled makes go-redis use the
// context's deadline on the connection.
func GoredisClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	client := goredis.NewClient(&goredis.Options{
		Addr:                  addr,
		DialTimeout:           Timeout,
		ReadTimeout:           Timeout,
		WriteTimeout:          Timeout,
		ContextTimeoutEnabled: true,
		PoolSize:              8,
	})
	t.Cleanup(func() { client.Close() })
	return client
}

// DeleteRedisKeys removes the keys that match pattern (a SCAN MATCH
// pattern, such as "scs:session:"+prefix+"*") when the test ends, through a
// connection of its own (the test's may be cut).
func DeleteRedisKeys(t testing.TB, addr, pattern string) {
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
}

// PgPool returns a pgx pool for url, with scs's sessions table and
// pgxlock's lock table in place, closed when the test ends. Its connect
// timeout is Timeout.
func PgPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = Timeout
	cfg.MaxConns = 8
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	CreateTables(t, ctx, pool)
	return pool
}

// ProxiedPgPool returns a pgx pool for url that connects through a
// TCPProxy, closed when the test ends.
func ProxiedPgPool(t testing.TB, url string) (*pgxpool.Pool, *TCPProxy) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := NewTCPProxy(t, PgAddr(cfg))
	host, port, _ := net.SplitHostPort(proxy.Addr())
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.Fallbacks = nil
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, proxy
}

// PgAddr is the host:port a pgx configuration connects to.
func PgAddr(cfg *pgxpool.Config) string {
	return net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
}

// Tables are the statements CreateTables runs: scs's sessions table and
// its index, and pgxlock's lock table (pgxlock.Schema, repeated here so that
// this package imports none of ours).
var Tables = []string{
	`CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expiry)`,
	`CREATE UNLOGGED TABLE IF NOT EXISTS smart_locks (
	name   TEXT PRIMARY KEY,
	owner  TEXT NOT NULL,
	expiry TIMESTAMPTZ NOT NULL
)`,
}

// CreateTables runs Tables. An advisory lock keeps test processes that
// start together from racing on them.
func CreateTables(t testing.TB, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range append([]string{`SELECT pg_advisory_xact_lock(7302615)`}, Tables...) {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// DeletePostgresRows removes, when the test ends, the sessions rows and
// lock rows whose key begins with prefix, through a pool of its own (the
// test's may be cut).
func DeletePostgresRows(t testing.TB, url, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		defer pool.Close()
		for _, q := range []string{
			`DELETE FROM sessions WHERE starts_with(token, $1)`,
			`DELETE FROM smart_locks WHERE starts_with(name, $1)`,
		} {
			if _, err := pool.Exec(ctx, q, prefix); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	})
}
