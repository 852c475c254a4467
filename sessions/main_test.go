package sessions_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No test leaves a goroutine behind, except the cleanup goroutine of the
// memstore that sessions.New(nil, …) creates through scs.New, which lives
// as long as the process by scs's design.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"))
}
