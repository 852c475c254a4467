package adapters

import (
	"hash/maphash"
	"net/http"
	"strings"
	"sync"

	"github.com/fhirware/smart/internal/hooks"
)

// A request without a handle uses the browser's most recent launch, whose
// handle is in the browser's session: it is known only once the session
// has loaded, and the launch record's read would follow it, a second
// round trip. So each App remembers, for the session cookies it has
// served such requests, the handle the session named, and reads that
// launch record at the same time as the session on the next request with
// the same cookie. The remembered handle is a guess and nothing more: the
// engine uses the record read ahead only when the session, once loaded,
// names that same handle as its most recent launch, and then checks the
// record against the session's browser, as always. A guess that is wrong
// (a newer launch, made on another instance, say) costs a read and is
// replaced; a cookie the App has not served (a new session, or one
// renewed at a callback) takes two round trips once.
//
// The guesses are kept by a keyed hash of the cookie's value (maphash,
// with a seed of the process), never by the value itself; they live in
// the process only, at most maxLatestGuesses of them.

// maxLatestGuesses bounds the handles remembered; when full, an arbitrary
// one makes room.
const maxLatestGuesses = 8192

type latestGuesses struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]string // hash of the session cookie's value -> handle
}

func newLatestGuesses() *latestGuesses {
	return &latestGuesses{seed: maphash.MakeSeed(), m: map[uint64]string{}}
}

func (g *latestGuesses) get(cookie string) string {
	k := maphash.String(g.seed, cookie)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[k]
}

func (g *latestGuesses) put(cookie, handle string) {
	k := maphash.String(g.seed, cookie)
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.m[k]; ok && old == handle {
		return
	}
	if _, ok := g.m[k]; !ok && len(g.m) >= maxLatestGuesses {
		for k := range g.m {
			delete(g.m, k)
			break
		}
	}
	g.m[k] = handle
}

// remember records handle as the most recent launch of the session whose
// cookie the request carries, when the App reads launch records ahead.
func (a *App) remember(r *http.Request, handle string) {
	if !hooks.PrefetchesLaunch(a.engine) {
		return
	}
	if v := cookieValue(r, a.browser.SessionManager().Cookie.Name); v != "" {
		a.latest.put(v, handle)
	}
}

// cookieValue returns the value of the first cookie named name in the
// request's Cookie headers, without parsing them all (as r.Cookie does,
// with allocations), or "".
func cookieValue(r *http.Request, name string) string {
	if name == "" {
		return ""
	}
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}
