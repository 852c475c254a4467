// Package storagetest checks that a [core.Storage], or a [core.Locker],
// keeps the contract the engine relies on, so that anyone writing one for
// another server (DynamoDB, etcd, Cloud SQL) runs the cases ours run
// against scs's memstore, goredisstore, redisstore and pgxstore, and our
// lockers, on real Redis and PostgreSQL.
//
// [Run] checks a Storage:
//
//   - Set, Get and Delete; a missing key, and a deleted one, give
//     core.ErrNotFound, and deleting a missing key is not an error;
//   - time-to-live: a record is gone once its ttl has run out, and not
//     long before;
//   - values are copies: neither the caller's slice after Set nor the slice
//     Get returns is shared with the store; an empty value stays a value;
//   - isolation: two storages made for one case never see each other's
//     keys (give each a prefix of its own);
//   - large values (64 KiB), many keys, concurrent writers;
//   - a cancelled context fails every call with an error wrapping
//     context.Canceled, and changes nothing;
//   - when the Storage is a [core.Taker]: Take returns the value once, and
//     of many concurrent Takes of one key exactly one gets it;
//   - with [Outage]: while the server is away every call fails with an
//     error that is not core.ErrNotFound (the engine answers it with 503
//     storage_unavailable; a *core.Error must carry that code), and the
//     Storage serves again, with the records it kept, once the server is
//     back.
//
// Run the suite from a test of the package that holds the Storage:
//
//	func TestStorage(t *testing.T) {
//		client := newClient(t)
//		storagetest.Run(t, func(t *testing.T) core.Storage {
//			return mystore.New(client, uniquePrefix(t))
//		})
//	}
//
// [Run] needs a live server and takes a few seconds: the expiry case waits
// for a record to run out. A Storage shared by several app instances goes
// with a core.Config.Locker that passes [RunLocker]; a Storage that is also
// a core.Taker must take atomically across processes (see core.Taker),
// which spares the lock at the take of a pending launch only.
//
// [RunLocker] checks a Locker, which the engine holds around a token
// refresh, a change to a browser's list of launches and the take of a
// pending launch: one holder at a time, release by the owner only, expiry
// of a lock whose holder is gone, and a cancelled context refused;
// [LockerOutage] checks for errors, never a lock, while the server is
// away:
//
//	func TestLocker(t *testing.T) {
//		client := newClient(t)
//		storagetest.RunLocker(t, func(t *testing.T) core.Locker {
//			return storagetest.PrefixedLocker(mylock.New(client), uniquePrefix(t))
//		})
//	}
//
// [RunLocker] takes a few seconds too: the expiry cases wait for locks to
// run out. Both outage checks are given functions that cut the connection
// to the server and restore it (a TCP proxy in front of the server does
// it).
package storagetest
