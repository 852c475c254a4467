package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
)

// DefaultMaxPages is how many Bundle pages a search reads at most, unless
// [MaxPages] says otherwise.
const DefaultMaxPages = 100

// SearchOption changes how a search runs; see [MaxPages], [Limit] and
// [WithIncluded].
type SearchOption func(*searchOptions)

type searchOptions struct {
	maxPages int
	limit    int // 0: no limit
	included bool
}

// MaxPages sets how many Bundle pages a search reads at most. A search
// with more pages yields an error wrapping ErrTooManyPages after the
// resources of the last page it read. The default is DefaultMaxPages; n < 1
// keeps it.
func MaxPages(n int) SearchOption {
	return func(o *searchOptions) {
		if n >= 1 {
			o.maxPages = n
		}
	}
}

// Limit makes a search yield at most n resources and then end, without an
// error and without fetching another page: the first n of the result,
// such as the five latest observations with _sort=-date. It composes with
// [MaxPages]: a search that reaches the page limit before n resources
// still ends with ErrTooManyPages. With [WithIncluded], included resources
// count too. The default is no limit; n < 1 keeps it. Limit does not set
// _count: add it to the parameters to fetch fewer resources a page.
func Limit(n int) SearchOption {
	return func(o *searchOptions) {
		if n >= 1 {
			o.limit = n
		}
	}
}

// WithIncluded makes a search yield the resources that _include and
// _revinclude brought in (search mode "include") as well as the matches.
// By default only the matches are yielded. OperationOutcome entries (search
// mode "outcome") are never yielded.
func WithIncluded() SearchOption {
	return func(o *searchOptions) { o.included = true }
}

// searchBundle is the part of a searchset Bundle a search reads.
type searchBundle struct {
	ResourceType string `json:"resourceType"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry entries[searchEntry] `json:"entry"`
}

// searchEntry is one entry of a searchset Bundle.
type searchEntry struct {
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

// maxPageEntries bounds the entries of one Bundle the client reads: a page
// of a search, or the answer to a batch or transaction. Servers page far
// smaller; decoding more would cost much more memory than the answer's
// bytes (each "{}," is an entry of its own).
const maxPageEntries = 10_000

// errTooManyEntries: a Bundle with more than maxPageEntries entries.
var errTooManyEntries = fmt.Errorf("the Bundle has more than %d entries", maxPageEntries)

// entries is a Bundle's entry array, decoded one entry at a time and at
// most maxPageEntries of them.
type entries[E any] []E

func (es *entries[E]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok == nil {
		return err // null: no entries
	} else if tok != json.Delim('[') {
		return errors.New("the Bundle's entry is not an array")
	}
	for dec.More() {
		if len(*es) == maxPageEntries {
			return errTooManyEntries
		}
		var e E
		if err := dec.Decode(&e); err != nil {
			return err
		}
		*es = append(*es, e)
	}
	return nil
}

// Search searches resources of type typ ("Observation") with the given
// parameters, GET [base]/typ?params, and returns an iterator over the
// resources of the result, page after page:
//
//	q := url.Values{"patient": {"123"}, "_count": {"50"}}
//	for obs, err := range c.Search(ctx, "Observation", q) {
//		if err != nil { … }
//		… json.Unmarshal(obs, &o) …
//	}
//
// An empty typ searches every type (GET [base]?params). The next page is
// fetched only when the previous one is consumed, and none once the loop
// breaks or [Limit] is reached. Pages are read up to a limit ([MaxPages]).
// Next links are followed on the base URL's origin only: a link to another
// origin ends the search with an error wrapping ErrForeignNextLink, and
// nothing is sent there; so does a link with a "." or ".." path segment,
// or one that repeats an earlier page.
//
// After an error the iterator stops. Every request honours ctx.
func (c *Client) Search(ctx context.Context, typ string, params url.Values, opts ...SearchOption) iter.Seq2[json.RawMessage, error] {
	o := newSearchOptions(opts)
	return func(yield func(json.RawMessage, error) bool) {
		c.search(ctx, typ, params, o, func(raw json.RawMessage, _ int, err error) bool {
			return yield(raw, err)
		})
	}
}

// Search is [Client.Search] with each resource decoded into a new T:
//
//	for obs, err := range fhir.Search[Observation](ctx, c, "Observation", q) { … }
//
// A resource that does not decode yields T's zero value and an error, and
// ends the iteration.
func Search[T any](ctx context.Context, c *Client, typ string, params url.Values, opts ...SearchOption) iter.Seq2[T, error] {
	o := newSearchOptions(opts)
	return func(yield func(T, error) bool) {
		c.search(ctx, typ, params, o, func(raw json.RawMessage, status int, err error) bool {
			var v T
			if err == nil {
				if jerr := json.Unmarshal(raw, &v); jerr != nil {
					v, err = *new(T), &Error{Method: http.MethodGet, Resource: knownType(typ), StatusCode: status,
						Err: fmt.Errorf("a resource of the result does not decode: %w", jerr)}
				}
			}
			return yield(v, err) && err == nil
		})
	}
}

func newSearchOptions(opts []SearchOption) searchOptions {
	o := searchOptions{maxPages: DefaultMaxPages}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// search runs a search, calling yield with each resource and the status of
// its page, or with an error, after which it stops. It stops too when
// yield returns false.
func (c *Client) search(ctx context.Context, typ string, params url.Values, o searchOptions, yield func(json.RawMessage, int, error) bool) {
	fail := func(status int, err error) {
		yield(nil, 0, &Error{Method: http.MethodGet, Resource: knownType(typ), StatusCode: status, Err: err})
	}
	if typ != "" && !validType(typ) {
		fail(0, errors.New("the type is not a resource type"))
		return
	}
	path := c.baseURL
	if typ != "" {
		path += "/" + typ
	}
	next, err := url.Parse(path)
	if err != nil {
		fail(0, err)
		return
	}
	next.RawQuery = params.Encode()
	first := queryWords(params)
	seen := map[string]bool{}
	n := 0
	for page := 0; next != nil; page++ {
		if page == o.maxPages {
			fail(0, fmt.Errorf("%w: stopped after %d pages; raise MaxPages or narrow the search", ErrTooManyPages, page))
			return
		}
		seen[next.String()] = true
		var b searchBundle
		// The first request's parameters, which an opaque next link no
		// longer shows, are taken out of the server's text too.
		status, err := c.getJSON(ctx, next, &b, first...)
		if err != nil {
			yield(nil, 0, err)
			return
		}
		if b.ResourceType != "Bundle" {
			fail(status, fmt.Errorf("the answer is a %s, not a Bundle", quote(b.ResourceType)))
			return
		}
		for _, e := range b.Entry {
			switch e.Search.Mode {
			case "", "match":
			case "include":
				if !o.included {
					continue
				}
			default:
				continue
			}
			if len(e.Resource) == 0 {
				continue
			}
			if !yield(e.Resource, status, nil) {
				return
			}
			if n++; n == o.limit {
				return
			}
		}
		if next, err = c.nextPage(next, &b, seen); err != nil {
			fail(status, err)
			return
		}
	}
}

// nextPage returns the URL of the page after cur, or nil at the last page.
// A relative next link is resolved against cur.
func (c *Client) nextPage(cur *url.URL, b *searchBundle, seen map[string]bool) (*url.URL, error) {
	for _, l := range b.Link {
		if l.Relation != "next" || l.URL == "" {
			continue
		}
		next, err := cur.Parse(l.URL)
		switch {
		case err != nil:
			return nil, errors.New("the next link is malformed; it was not followed")
		case !c.sameOrigin(next):
			return nil, fmt.Errorf("%w: it leads to %s; it was not followed", ErrForeignNextLink, origin(next))
		case hasDotSegment(next.Path):
			return nil, errors.New(`the next link has a "." or ".." path segment; it was not followed`)
		case seen[next.String()]:
			return nil, errors.New("the next link repeats an earlier page; it was not followed")
		}
		return next, nil
	}
	return nil, nil
}
