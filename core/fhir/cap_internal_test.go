package fhir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The client stops reading an answer at its cap, whether the answer says
// its length or not. The cap is 64 MiB (maxAnswerBytes); these cases use
// a small one, so as not to move 64 MiB through the race detector.
func TestAnswerCap(t *testing.T) {
	t.Parallel()
	const limit = 1000
	head, tail := `{"resourceType":"Patient","id":"pat-1","pad":"`, `"}`
	for _, tc := range []struct {
		name          string
		size          int  // the whole answer's size
		contentLength bool // whether the server says it
		wantErr       bool
	}{
		{"content-length over the cap", limit + 1, true, true},
		{"chunked over the cap", 10 * limit, false, true},
		{"chunked at the cap", limit, false, false},
		{"content-length at the cap", limit, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.contentLength {
					w.Header().Set("Content-Length", fmt.Sprint(tc.size))
				}
				body := head + strings.Repeat("a", tc.size-len(head)-len(tail)) + tail
				for i := 0; i < len(body); i += 100 { // in pieces: chunked unless the length was set
					if _, err := io.WriteString(w, body[i:min(i+100, len(body))]); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			}))
			t.Cleanup(srv.Close)
			c, err := NewClient(srv.URL+"/fhir", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			c.maxAnswer = limit
			var v map[string]any
			err = c.Read(context.Background(), "Patient/pat-1", &v)
			if !tc.wantErr {
				if err != nil || v["id"] != "pat-1" {
					t.Fatalf("Read = %v, %v; want pat-1", v, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, errTooLarge) || e.StatusCode != http.StatusOK || v != nil {
				t.Fatalf("Read = %v, %v; want an *Error wrapping errTooLarge", v, err)
			}
		})
	}
}
