// Package pgxbound bounds every exchange of a pgx pool with PostgreSQL by
// a deadline, for stores (such as scs's pgxstore) that give pgx no context:
// the examples' PostgreSQL store and the hung-store tests use it.
package pgxbound

import (
	"context"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Apply makes every exchange with PostgreSQL on cfg's connections fail
// after d without an answer: each write to the server sets a deadline d
// ahead on the connection, for the write and the answer read after it, so
// a connection whose server hangs fails within d and is dropped from the
// pool. Connecting is bounded by d too.
func Apply(cfg *pgxpool.Config, d time.Duration) {
	cfg.ConnConfig.ConnectTimeout = d
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, d: d}, nil
	}
}

// deadlineConn sets a deadline d ahead at each write.
type deadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
