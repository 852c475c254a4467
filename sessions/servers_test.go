package sessions_test

import (
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fhirware/smart/internal/testservers"
)

// The real servers the tests run against are named by environment
// variables (see internal/testservers). Without a variable the tests that
// need it skip; with CI=true they fail.

func redisAddr(t *testing.T) string {
	t.Helper()
	return testservers.RedisAddr(t)
}

func postgresURL(t *testing.T) string {
	t.Helper()
	return testservers.PostgresURL(t)
}

// uniquePrefix is a key prefix no other test, or test process sharing the
// server, uses.
func uniquePrefix(t *testing.T) string { return testservers.UniquePrefix(t) }

// redigoStore returns a redisstore over a redigo pool dialling addr, closed
// when the test ends.
func redigoStore(t *testing.T, addr string) (scs.Store, *redigo.Pool) {
	t.Helper()
	pool := testservers.RedigoPool(t, addr)
	return redisstore.New(pool), pool
}

// goredisStore returns a goredisstore over a go-redis client for addr,
// closed when the test ends.
func goredisStore(t *testing.T, addr string) (scs.Store, *goredis.Client) {
	t.Helper()
	client := testservers.GoredisClient(t, addr)
	return goredisstore.New(client), client
}

// deleteRedisKeys removes the scs keys under prefix when the test ends.
func deleteRedisKeys(t *testing.T, addr, prefix string) {
	testservers.DeleteRedisKeys(t, addr, "scs:session:"+prefix+"*")
}

// pgPool returns a pgx pool for url, with the scs sessions table in place,
// closed when the test ends.
func pgPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	return testservers.PgPool(t, url)
}

// proxiedPgPool returns a pgx pool for url that connects through a
// tcpProxy, closed when the test ends.
func proxiedPgPool(t *testing.T, url string) (*pgxpool.Pool, *tcpProxy) {
	t.Helper()
	return testservers.ProxiedPgPool(t, url)
}

// pgStore returns a pgxstore without its cleanup goroutine, so none outlives
// the test.
func pgStore(pool *pgxpool.Pool) scs.Store {
	return pgxstore.NewWithCleanupInterval(pool, 0)
}

// deletePostgresRows removes the rows under prefix when the test ends.
func deletePostgresRows(t *testing.T, url, prefix string) {
	testservers.DeletePostgresRows(t, url, prefix)
}

// tcpProxy stands between a client and a real server so that a test can
// take the server away and bring it back.
type tcpProxy = testservers.TCPProxy

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	return testservers.NewTCPProxy(t, target)
}
