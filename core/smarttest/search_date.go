package smarttest

import (
	"slices"
	"strings"
	"time"
)

// dateRange is the span of time a FHIR date, dateTime or Period covers,
// from low (inclusive) to high (exclusive). "2024" covers the whole year,
// "2024-03-01T09:30:00Z" one second; a Period without an end goes on to
// endOfTime.
type dateRange struct{ low, high time.Time }

// The open ends of a Period; every FHIR date falls between them.
var (
	startOfTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	endOfTime   = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// sortLayout formats instants so that strings sort as times do.
const sortLayout = "2006-01-02T15:04:05.000000000Z"

// sortString is a string that sorts ranges by their start, then their end.
func (r dateRange) sortString() string {
	return r.low.UTC().Format(sortLayout) + " " + r.high.UTC().Format(sortLayout)
}

// parseDate parses a FHIR date or dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or
// YYYY-MM-DDThh:mm[:ss[.fff…]] with an optional Z or ±hh:mm zone. A value
// without a zone is in UTC. A space before the zone's hours stands for a
// "+" that was not percent-encoded in a query string.
func parseDate(s string) (dateRange, bool) {
	day, clock, hasClock := strings.Cut(s, "T")
	var t time.Time
	var err error
	switch len(day) {
	case len("2006"):
		t, err = time.Parse("2006", day)
		return dateRange{t, t.AddDate(1, 0, 0)}, err == nil && !hasClock
	case len("2006-01"):
		t, err = time.Parse("2006-01", day)
		return dateRange{t, t.AddDate(0, 1, 0)}, err == nil && !hasClock
	case len("2006-01-02"):
		if t, err = time.Parse("2006-01-02", day); err != nil {
			return dateRange{}, false
		}
		if !hasClock {
			return dateRange{t, t.AddDate(0, 0, 1)}, true
		}
	default:
		return dateRange{}, false
	}
	zone := time.UTC
	switch n := len(clock); {
	case strings.HasSuffix(clock, "Z"):
		clock = clock[:n-1]
	case n > 6 && strings.ContainsRune("+- ", rune(clock[n-6])) && clock[n-3] == ':':
		off, err := time.Parse("15:04", clock[n-5:])
		if err != nil {
			return dateRange{}, false
		}
		secs := off.Hour()*3600 + off.Minute()*60
		if clock[n-6] == '-' {
			secs = -secs
		}
		zone = time.FixedZone("", secs)
		clock = clock[:n-6]
	}
	var layout string
	var unit time.Duration
	switch whole, frac, _ := strings.Cut(clock, "."); {
	case len(whole) == len("15:04") && frac == "":
		layout, unit = "15:04", time.Minute
	case len(whole) == len("15:04:05") && frac == "":
		layout, unit = "15:04:05", time.Second
	case len(whole) == len("15:04:05") && len(frac) <= 9 && strings.Trim(frac, "0123456789") == "" && frac != "":
		layout, unit = "15:04:05."+strings.Repeat("0", len(frac)), time.Second
		for range frac {
			unit /= 10
		}
	default:
		return dateRange{}, false
	}
	t, err = time.ParseInLocation("2006-01-02T"+layout, day+"T"+clock, zone)
	return dateRange{t, t.Add(unit)}, err == nil
}

// datePrefixes are the comparisons a date search value can start with;
// dateMatches says what each means.
var datePrefixes = []string{"eq", "ne", "lt", "le", "gt", "ge", "sa", "eb"}

// dateMatches reports whether a resource's date range t matches the range
// s of a search value with a prefix.
func dateMatches(prefix string, s, t dateRange) bool {
	within := !t.low.Before(s.low) && !t.high.After(s.high)
	before := t.low.Before(s.low) // some of t lies before s
	after := t.high.After(s.high) // some of t lies after s
	switch prefix {
	case "eq":
		return within
	case "ne":
		return !within
	case "lt":
		return before
	case "le":
		return before || within
	case "gt":
		return after
	case "ge":
		return after || within
	case "sa": // all of t lies after s
		return !t.low.Before(s.high)
	case "eb": // all of t lies before s
		return !t.high.After(s.low)
	}
	return false
}

// dateValue parses one date search value, "ge2024-01-01", into the test
// of a resource's range. ok is false for a malformed value; supported is
// false for the prefix ap, which the server does not implement.
func dateValue(v string) (match func(target dateRange) bool, ok, supported bool) {
	prefix := "eq"
	if len(v) >= 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	if prefix == "ap" {
		return nil, true, false
	}
	search, parsed := parseDate(v)
	if !parsed || !slices.Contains(datePrefixes, prefix) {
		return nil, false, true
	}
	return func(t dateRange) bool { return dateMatches(prefix, search, t) }, true, true
}

// periodRange is the range of a FHIR Period: from its start to its end,
// either of which may be missing.
func periodRange(p map[string]any) (dateRange, bool) {
	if p == nil {
		return dateRange{}, false
	}
	r := dateRange{startOfTime, endOfTime}
	start, end := str(p["start"]), str(p["end"])
	if start == "" && end == "" {
		return dateRange{}, false
	}
	if start != "" {
		s, ok := parseDate(start)
		if !ok {
			return dateRange{}, false
		}
		r.low = s.low
	}
	if end != "" {
		e, ok := parseDate(end)
		if !ok {
			return dateRange{}, false
		}
		r.high = e.high
	}
	return r, true
}

// choiceRange is the range of the first of a resource's date elements
// that is present: a dateTime, instant or Period, named in fields.
func choiceRange(body map[string]any, fields ...string) (dateRange, bool) {
	for _, f := range fields {
		switch v := body[f].(type) {
		case string:
			return parseDate(v)
		case map[string]any:
			return periodRange(v)
		}
	}
	return dateRange{}, false
}

// clinicalDates gives, per resource type, the range of the date search
// parameter and sort key: when the thing happened.
var clinicalDates = map[string]func(body map[string]any) (dateRange, bool){
	"Observation": func(b map[string]any) (dateRange, bool) {
		return choiceRange(b, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
	},
	"Condition": func(b map[string]any) (dateRange, bool) {
		return choiceRange(b, "onsetDateTime", "onsetPeriod", "recordedDate")
	},
	"Encounter": func(b map[string]any) (dateRange, bool) {
		return choiceRange(b, "period")
	},
}

// lastUpdated is the range of a resource's meta.lastUpdated.
func lastUpdated(body map[string]any) (dateRange, bool) {
	meta, _ := body["meta"].(map[string]any)
	return choiceRange(meta, "lastUpdated")
}
