package core_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirware/smart/core"
	"github.com/fhirware/smart/core/smarttest"
)

// A launch context of tens of thousands of tiny items within the 64 KiB
// record (a fhirContext of 10,000 {}, or as many extra fields) decodes to
// ten times its size: the engine keeps thousands of decoded records, and
// LaunchContext copies the items on every call. A token response with more
// than 128 fhirContext items or 128 fields fails the callback with
// token_exchange_failed, and nothing is stored; real ones carry a few.
func TestLaunchContextOfManyItemsRefused(t *testing.T) {
	t.Parallel()
	many := func(n int) []map[string]any { return make([]map[string]any, n) }
	fields := func(n int) map[string]any {
		m := map[string]any{}
		for i := range n {
			m["f"+strconv.Itoa(i)] = 0
		}
		return m
	}
	for _, tc := range []struct {
		name string
		lc   smarttest.LaunchContext
		ok   bool
	}{
		{"fhirContext of 10000", smarttest.LaunchContext{Patient: "pat-1", FHIRContext: many(10000)}, false},
		{"fhirContext of 129", smarttest.LaunchContext{Patient: "pat-1", FHIRContext: many(129)}, false},
		{"fhirContext of 128", smarttest.LaunchContext{Patient: "pat-1", FHIRContext: many(128)}, true},
		{"5000 extra fields", smarttest.LaunchContext{Patient: "pat-1", Extra: fields(5000)}, false},
		{"200 extra fields", smarttest.LaunchContext{Patient: "pat-1", Extra: fields(200)}, false},
		{"100 extra fields", smarttest.LaunchContext{Patient: "pat-1", Extra: fields(100)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, smarttest.Options{}, smarttest.Client{}, core.Config{}, core.Issuer{})
			cb := h.launch("browser-1", &tc.lc)
			stored := h.store.len()
			rc, err := h.eng.Callback(context.Background(), "browser-1", cb)
			if tc.ok {
				if err != nil {
					t.Fatalf("Callback: %v", err)
				}
				if lc := rc.LaunchContext(); len(lc.FHIRContext) != len(tc.lc.FHIRContext) || len(lc.Extra) != len(tc.lc.Extra) {
					t.Errorf("launch context of %d fhirContext items and %d extra fields, want %d and %d", len(lc.FHIRContext), len(lc.Extra), len(tc.lc.FHIRContext), len(tc.lc.Extra))
				}
				return
			}
			wantCode(t, err, core.CodeTokenExchangeFailed)
			if !strings.Contains(err.Error(), "more than 128") {
				t.Errorf("error %q does not say what is too many", err)
			}
			if n := h.store.len(); n >= stored {
				t.Errorf("%d records after the refused callback, %d before: no launch should be stored", n, stored)
			}
		})
	}
}
