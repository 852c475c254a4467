package fhir

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors a request may fail with, tested with errors.Is. Every error of
// this package is an *Error; these are its causes, or matched by it.
var (
	// ErrNotFound matches an *Error whose StatusCode is 404 Not Found or
	// 410 Gone: the resource does not exist, or was deleted.
	ErrNotFound = errors.New("fhir: resource not found")

	// ErrTooManyPages: the search had more pages than its page limit
	// ([MaxPages], DefaultMaxPages by default). The resources already
	// yielded are only part of the result.
	ErrTooManyPages = errors.New("fhir: the search has more pages than its page limit")

	// ErrForeignNextLink: a page's next link leads to another origin
	// (scheme, host and port) than the client's base URL. It is not
	// followed: its query would carry the search parameters, which may
	// identify a patient, and the HTTP client may carry credentials, to a
	// host the caller never chose.
	ErrForeignNextLink = errors.New("fhir: the next link leads to another origin")

	// ErrForeignReference: [Client.Read] was given an absolute URL on
	// another origin than the client's base URL. It is not fetched: the
	// HTTP client may carry credentials that belong to the base's server
	// only, and references often come from resources a server sent.
	ErrForeignReference = errors.New("fhir: the reference leads to another origin")

	// ErrInvalidReference: a reference given to the client is not one it
	// can send: malformed, with a "." or ".." path segment (which would
	// name another resource once resolved), or naming a host without a
	// scheme. Nothing is sent.
	ErrInvalidReference = errors.New("fhir: the reference is not a usable FHIR reference")
)

// Error is the one error type of this package: every failure of a
// [Client]'s methods, and of [Read] and [Search], is an *Error, so callers
// read it with errors.As once.
//
// Its message is for logs. It names the request by its method and
// resource type only: never an id, a query (either may identify a
// patient) or a header. The server's OperationOutcome is in it with the
// request's ids and query values replaced by "…" (servers often echo
// them), control characters turned into spaces, and shortened.
type Error struct {
	// Method is the request's HTTP method, such as "GET"; "" when the
	// failure came before any request (a bad base URL).
	Method string
	// Resource is the resource type the request was about, when it is a
	// resource type of FHIR R4: "Patient" for GET Patient/123, "Bundle" for
	// a batch or transaction. It is "" otherwise. It never holds an id, nor
	// text a server chose.
	Resource string
	// StatusCode is the HTTP status of the server's answer, such as 404;
	// 0 when there was none (a network error, a request refused before it
	// was sent). A 2xx status goes with an answer that could not be used,
	// such as malformed JSON.
	StatusCode int
	// Outcome is the OperationOutcome the server sent with an error
	// status, or nil. It is as sent: unlike the message, it may hold the
	// request's ids, and whatever else the server wrote.
	Outcome *OperationOutcome
	// Err is the cause: a network error (as the HTTP client returned it,
	// without the *url.Error around it, whose message holds the URL), a
	// decoding error, ErrTooManyPages, ErrForeignNextLink, … or nil.
	Err error

	// said is Outcome's text for Error: printable, shortened, and with the
	// request's ids and query values taken out (see redact). An Error made
	// elsewhere has none; Error then shows Outcome printable and short.
	said string
}

// Error returns "fhir: METHOD Resource: status: the server said: outcome:
// cause", leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fhir:")
	sep := " "
	if e.Method != "" {
		b.WriteString(" " + e.Method)
		if e.Resource != "" {
			b.WriteString(" " + e.Resource)
		}
		sep = ": "
	}
	if e.StatusCode != 0 {
		b.WriteString(sep + strconv.Itoa(e.StatusCode))
		if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteString(" " + t)
		}
		sep = ": "
	}
	said := e.said
	if said == "" && e.Outcome != nil {
		said = shorten(printable(e.Outcome.String()), maxSaid)
	}
	if said != "" {
		b.WriteString(sep + "the server said: " + said)
		sep = ": "
	}
	if e.Err != nil {
		b.WriteString(sep + strings.TrimPrefix(e.Err.Error(), "fhir: "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is ErrNotFound and the server answered 404 or
// 410, so that errors.Is(err, fhir.ErrNotFound) works.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone)
}

// maxSaid is how much of a server's OperationOutcome text an error message
// keeps, in bytes.
const maxSaid = 300

// errMalformedRedirect stands for net/http's error about a redirect whose
// Location does not parse, which quotes it.
var errMalformedRedirect = errors.New("the server sent a redirect with a malformed Location")

// transportError is the *Error for a request the HTTP client could not
// complete. net/http wraps its errors in a *url.Error whose message holds
// the whole URL, ids and query included: it is taken off, and its cause
// kept, so errors.Is and errors.As still reach whatever the client's
// Transport returned.
func transportError(req *http.Request, resource string, err error) *Error {
	for {
		ue, ok := err.(*url.Error)
		if !ok {
			break
		}
		err = ue.Err
		if err == nil {
			err = errors.New("the request failed")
		}
	}
	if strings.Contains(err.Error(), "Location header") {
		// net/http quotes a malformed redirect's Location whole, path and
		// query included.
		err = errMalformedRedirect
	}
	return &Error{Method: req.Method, Resource: resource, Err: err}
}

// requestWords lists the parts of a request URL that may identify a
// patient, to take out of the server's text (see redact): every path
// segment that is not FHIR's own word (a resource type first or third, an
// operation, _history, _search, which is how [base]/Type/id/_history/vid,
// [base]/Type/$op and [base]/Patient/id/Type read), percent-decoded and as
// sent, and every query value (see queryWords).
func requestWords(basePath string, u *url.URL) []string {
	var words []string
	path := u.EscapedPath()
	if path == basePath || strings.HasPrefix(path, basePath+"/") {
		path = path[len(basePath):]
	}
	for i, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if pathWords[seg] || ((i == 0 || i == 2) && resourceTypes[seg]) {
			continue
		}
		words = append(words, seg)
		if dec, err := url.PathUnescape(seg); err == nil && dec != seg {
			words = append(words, dec)
		}
	}
	return append(words, queryWords(u.Query())...)
}

// queryWords lists the values of a query (search parameters, an
// If-None-Exist condition) for redact: each whole, decoded and
// percent-encoded, and split at characters an id cannot have, less the
// resource types.
func queryWords(q url.Values) []string {
	var words []string
	for _, values := range q {
		for _, v := range values {
			words = append(words, v, url.QueryEscape(v), url.PathEscape(v))
			for piece := range strings.FieldsFuncSeq(v, func(r rune) bool { return !idByte(r) && r != '.' }) {
				if !resourceTypes[piece] {
					words = append(words, piece)
				}
			}
		}
	}
	return words
}

// outcomeText is an OperationOutcome's text for an error message, with
// words (see requestWords) taken out.
func outcomeText(oo *OperationOutcome, words []string) string {
	if oo == nil {
		return ""
	}
	return shorten(redact(printable(shorten(oo.String(), 64<<10)), words), maxSaid)
}

// redact replaces each word in s by "…": wherever it is for a word of
// four bytes or more, and where it stands whole for a shorter one, when no
// letter, digit, '-' or '_' touches it on either side (so "1" is found in
// "Patient/1 is not known." but not in "version 12"). Longer words go
// first, so one that holds another goes whole.
func redact(s string, words []string) string {
	words = slices.Clone(words)
	slices.SortFunc(words, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, w := range words {
		if w == "" || !strings.Contains(s, w) {
			continue
		}
		var b strings.Builder
		for i := 0; i < len(s); {
			if strings.HasPrefix(s[i:], w) && (len(w) >= 4 || ((i == 0 || !idByte(rune(s[i-1]))) && (i+len(w) == len(s) || !idByte(rune(s[i+len(w)]))))) {
				b.WriteString("…")
				i += len(w)
				continue
			}
			b.WriteByte(s[i])
			i++
		}
		s = b.String()
	}
	return s
}

// idByte reports whether r may be part of an id or code in a server's text:
// a letter, digit, '-' or '_'.
func idByte(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// printable turns control characters into spaces, so that a server's text
// cannot forge log lines, nor join words that redact must find whole.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// shorten cuts s to at most n bytes on a character boundary, marking the
// cut with "…". A cut in the middle of a word drops the whole word, so
// that no part of an id survives the cut for redact to miss.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	for cut > 0 && idByte(rune(s[cut-1])) && idByte(rune(s[cut])) {
		cut--
	}
	return s[:cut] + "…"
}

// quote quotes text a server sent (a resource type, say) for a cause's
// message: printable and short.
func quote(s string) string {
	return strconv.Quote(shorten(printable(s), 60))
}
