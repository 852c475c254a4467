// Package leakcheck helps the HTTP test suites prove that no token leaks:
// it records every token an EHR issues and keeps the app's logs, so a suite
// can search both for them.
package leakcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer for concurrent writers, such as a slog handler.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TokenRecorder is an http.RoundTripper for the engine's HTTP client: it
// passes requests to Base and keeps every access, refresh and id token of
// the token endpoint's answers (any path ending in /token).
type TokenRecorder struct {
	Base http.RoundTripper // nil: http.DefaultTransport

	mu     sync.Mutex
	tokens []string
}

// RoundTrip sends req and records the tokens of a token endpoint's answer.
func (tr *TokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := tr.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var answer map[string]any
	if json.Unmarshal(body, &answer) == nil {
		tr.mu.Lock()
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if s, ok := answer[k].(string); ok && s != "" {
				tr.tokens = append(tr.tokens, s)
			}
		}
		tr.mu.Unlock()
	}
	return resp, err
}

// Tokens returns the tokens recorded so far.
func (tr *TokenRecorder) Tokens() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.tokens...)
}
