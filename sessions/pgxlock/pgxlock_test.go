package pgxlock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"go.uber.org/goleak"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/internal/testservers"
	"github.com/fhirware/smart/sessions/lockertest"
	"github.com/fhirware/smart/sessions/pgxlock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLocker(t *testing.T) {
	t.Parallel()
	url := testservers.PostgresURL(t)
	pool := testservers.PgPool(t, url)
	lockertest.Run(t, func(t *testing.T) core.Locker {
		prefix := testservers.UniquePrefix(t)
		testservers.DeletePostgresRows(t, url, prefix)
		return lockertest.Prefixed(pgxlock.New(pool), prefix)
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
	unlock := lockertest.MustLock(t, l, prefix+"lock:a", 10*time.Second)
	var left time.Duration
	if err := pool.QueryRow(t.Context(), `SELECT expiry - clock_timestamp() FROM smart_locks WHERE name = $1`, prefix+"lock:a").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left <= 9*time.Second || left > 10*time.Second {
		t.Fatalf("the lock runs out in %v; want about 10s", left)
	}
	lockertest.MustUnlock(t, unlock)
	if n := count(); n != 0 {
		t.Fatalf("%d rows after unlock", n)
	}

	lockertest.MustLock(t, l, prefix+"lock:dead", time.Millisecond) // its holder dies
	lockertest.MustLock(t, l, prefix+"lock:alive", time.Minute)
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
	lockertest.Outage(t, lockertest.Prefixed(pgxlock.New(pool), prefix), proxy.Cut, proxy.Restore)
}

// TakeFrom takes a pgxstore's row over the Locker's pool once, and not
// one whose expiry has passed; a store over another pool, or another kind
// of store, is not the Locker's to take from.
func TestTakeFrom(t *testing.T) {
	t.Parallel()
	url := testservers.PostgresURL(t)
	pool := testservers.PgPool(t, url)
	prefix := testservers.UniquePrefix(t)
	testservers.DeletePostgresRows(t, url, prefix)
	l := pgxlock.New(pool)
	store := pgxstore.NewWithCleanupInterval(pool, 0)
	if err := store.Commit(prefix+"k", []byte("v"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k")
	if err != nil || !found || string(b) != "v" {
		t.Fatalf("TakeFrom = %q, %v, %v; want the record", b, found, err)
	}
	if b, found, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); err != nil || found {
		t.Fatalf("second TakeFrom = %q, %v, %v; want nothing", b, found, err)
	}
	if err := store.Commit(prefix+"old", []byte("v"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if b, found, err := l.TakeFrom(t.Context(), store, prefix+"old", prefix+"lock:old"); err != nil || found {
		t.Fatalf("TakeFrom of an expired row = %q, %v, %v; want nothing", b, found, err)
	}
	other := testservers.PgPool(t, url)
	for _, store := range []scs.Store{pgxstore.NewWithCleanupInterval(other, 0), memstore.NewWithCleanupInterval(0)} {
		if _, _, err := l.TakeFrom(t.Context(), store, prefix+"k", prefix+"lock:k"); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("TakeFrom a %T not over the Locker's pool = %v; want errors.ErrUnsupported", store, err)
		}
	}
}
