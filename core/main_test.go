package core_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive the tests: not a refresh, not a discovery fetch,
// not a key set fetch.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
