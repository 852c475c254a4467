package pgxlock_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/pgxlock"
	"github.com/fhirware/smart/sessions/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	url := testservers.PostgresURL(t)
	pool := testservers.PgPool(t, url)
	storagetest.RunLocker(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeletePostgresRows(t, url, prefix)
		return storagetest.PrefixedLocker(pgxlock.New(pool), prefix)
	})
}

// The testservers tables are pgxlock's: CreateTable on them changes
// nothing, and Schema is what testservers creates.
func TestCreateTable(t *testing.T) {
	t.Parallel()
	pool := testservers.PgPool(t, testservers.PostgresURL(t))
	if err := pgxlock.New(pool).CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range testservers.Tables {
		found = found || q == pgxlock.Schema
	}
	if !found {
		t.Fatal("testservers.Tables does not hold pgxlock.Schema")
	}
}

// The lock is a row with its owner and the database's expiry; unlock
// deletes it, and DeleteExpired removes rows left by holders that died.
func TestLockerRow(t *testing.T) {
	t.Parallel()
	url := testservers.PostgresURL(t)
	pool := testservers.PgPool(t, url)
	prefix := testservers.UniquePrefix(t)
	testservers.DeletePostgresRows(t, url, prefix)
	l := pgxlock.New(pool)

	count := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM smart_locks WHERE starts_with(name, $1)`, prefix).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	unlock := storagetest.MustLock(t, l, prefix+"lock:a", 10*time.Second)
	var left time.Duration
	if err := pool.QueryRow(t.Context(), `SELECT expiry - clock_timestamp() FROM smart_locks WHERE name = $1`, prefix+"lock:a").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left <= 9*time.Second || left > 10*time.Second {
		t.Fatalf("the lock runs out in %v; want about 10s", left)
	}
	storagetest.MustUnlock(t, unlock)
	if n := count(); n != 0 {
		t.Fatalf("%d rows after unlock", n)
	}

	storagetest.MustLock(t, l, prefix+"lock:dead", time.Millisecond) // its holder dies
	storagetest.MustLock(t, l, prefix+"lock:alive", time.Minute)
	time.Sleep(10 * time.Millisecond)
	if _, err := l.DeleteExpired(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows after DeleteExpired; want the live lock's only", n)
	}
}

func TestLockerOutage(t *testing.T) {
	t.Parallel()
	url := testservers.PostgresURL(t)
	testservers.PgPool(t, url) // the tables
	pool, proxy := testservers.ProxiedPgPool(t, url)
	prefix := testservers.UniquePrefix(t)
	testservers.DeletePostgresRows(t, url, prefix)
	storagetest.LockerOutage(t, storagetest.PrefixedLocker(pgxlock.New(pool), prefix), proxy.Cut, proxy.Restore)
}
