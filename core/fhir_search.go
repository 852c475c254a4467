package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// DefaultMaxPages is how many Bundle pages a search reads at most, unless
// [MaxPages] says otherwise.
const DefaultMaxPages = 100

// Errors a search yields, wrapped in an *Error with CodeFHIRRequestFailed.
var (
	// ErrTooManyPages: the search had more pages than its page limit
	// ([MaxPages], DefaultMaxPages by default). The resources already
	// yielded are only part of the result.
	ErrTooManyPages = errors.New("smart: the search has more pages than its page limit")

	// ErrForeignNextLink: a page's next link leads to another origin than
	// the launch's FHIR server. It is not followed, with or without the
	// token: its query would carry the search parameters, which may
	// identify the patient, to a host the app never chose.
	ErrForeignNextLink = errors.New("smart: the next link leads to another origin")
)

// SearchOption changes how a search runs; see [MaxPages] and
// [WithIncluded].
type SearchOption func(*searchOptions)

type searchOptions struct {
	maxPages int
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
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// Search searches resources of type typ ("Observation") with the given
// parameters, GET [base]/typ?params, and returns an iterator over the
// resources of the result, page after page:
//
//	q := url.Values{"patient": {rc.Patient().ID()}, "_count": {"50"}}
//	for obs, err := range rc.Search(ctx, "Observation", q) {
//		if err != nil { … }
//		… json.Unmarshal(obs, &o) …
//	}
//
// An empty typ searches every type (GET [base]?params). The next page is
// fetched only when the previous one is consumed, and none once the loop
// breaks. Pages are read up to a limit ([MaxPages]). Next links are
// followed on the launch's FHIR origin only: a link to another origin ends
// the search with an error wrapping ErrForeignNextLink, and nothing is sent
// there.
//
// After an error the iterator stops. Every request honours ctx.
func (rc *ReadyClient) Search(ctx context.Context, typ string, params url.Values, opts ...SearchOption) iter.Seq2[json.RawMessage, error] {
	o := searchOptions{maxPages: DefaultMaxPages}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(json.RawMessage, error) bool) {
		if typ != "" && !validType(typ) {
			yield(nil, newError("fhir", CodeInvalidRequest, "search: the type is not a resource type", untrustedText("type", typ)))
			return
		}
		path := rc.issuer.URL
		if typ != "" {
			path += "/" + typ
		}
		next, err := url.Parse(path)
		if err != nil {
			yield(nil, newError("fhir", CodeInvalidRequest, "search: malformed URL", err))
			return
		}
		next.RawQuery = params.Encode()
		seen := map[string]bool{}
		for page := 0; next != nil; page++ {
			if page == o.maxPages {
				yield(nil, &Error{Op: "fhir", Code: CodeFHIRRequestFailed, Err: ErrTooManyPages,
					Description: "search: stopped after " + strconv.Itoa(page) + " pages; raise MaxPages or narrow the search"})
				return
			}
			seen[next.String()] = true
			b, err := rc.searchPage(ctx, next)
			if err != nil {
				yield(nil, err)
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
				if !yield(e.Resource, nil) {
					return
				}
			}
			if next, err = rc.nextPage(next, b, seen); err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// Search is [ReadyClient.Search] with each resource decoded into a new T:
//
//	for obs, err := range core.Search[Observation](ctx, rc, "Observation", q) { … }
//
// A resource that does not decode yields T's zero value and an error, and
// ends the iteration.
func Search[T any](ctx context.Context, rc *ReadyClient, typ string, params url.Values, opts ...SearchOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for raw, err := range rc.Search(ctx, typ, params, opts...) {
			var v T
			if err == nil {
				if jerr := json.Unmarshal(raw, &v); jerr != nil {
					v, err = *new(T), newError("fhir", CodeFHIRRequestFailed, "search: a resource does not decode", jerr)
				}
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// searchPage fetches one page of a search.
func (rc *ReadyClient) searchPage(ctx context.Context, u *url.URL) (*searchBundle, error) {
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, newError("fhir", CodeInvalidRequest, "search: malformed URL", err)
	}
	var b searchBundle
	if err := rc.doJSON(ctx, req, &b); err != nil {
		return nil, err
	}
	if b.ResourceType != "Bundle" {
		return nil, newError("fhir", CodeFHIRRequestFailed, "search: "+rc.describe(req)+" did not answer with a Bundle",
			fmt.Errorf("the server answered a %s", quoteShort(printable(b.ResourceType))))
	}
	return &b, nil
}

// nextPage returns the URL of the page after cur, or nil at the last page.
// A relative next link is resolved against cur.
func (rc *ReadyClient) nextPage(cur *url.URL, b *searchBundle, seen map[string]bool) (*url.URL, error) {
	for _, l := range b.Link {
		if l.Relation != "next" || l.URL == "" {
			continue
		}
		next, err := cur.Parse(l.URL)
		if err != nil {
			return nil, newError("fhir", CodeFHIRRequestFailed, "search: malformed next link", err)
		}
		if !rc.sameOrigin(next) {
			return nil, &Error{Op: "fhir", Code: CodeFHIRRequestFailed,
				Err:         fmt.Errorf("%w: it leads to %s", ErrForeignNextLink, quoteShort(printable(next.Scheme+"://"+next.Host))),
				Description: "search: the server's next link leads away from the FHIR server's origin; it was not followed"}
		}
		if hasDotSegment(next.Path) {
			return nil, newError("fhir", CodeFHIRRequestFailed, "search: the server's next link has a \".\" or \"..\" path segment; it was not followed", nil)
		}
		if seen[next.String()] {
			return nil, newError("fhir", CodeFHIRRequestFailed, "search: the server's next link repeats an earlier page", nil)
		}
		return next, nil
	}
	return nil, nil
}
