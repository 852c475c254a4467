package smarttest_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirware/smart/core/smarttest"
)

// session starts a server and logs in, returning both and the access token.
func session(t *testing.T, opts smarttest.Options) (*smarttest.Server, string) {
	t.Helper()
	s := start(t, opts)
	return s, str(login(t, s)["access_token"])
}

func TestFHIRNeedsToken(t *testing.T) {
	t.Parallel()
	s, _ := session(t, smarttest.Options{})
	for _, tok := range []string{"", "made-up"} {
		resp, oo := fhir(t, s, tok, "GET", "/Patient/pat-1", nil)
		if resp.StatusCode != 401 || oo["resourceType"] != "OperationOutcome" ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("token %q: %d %v %q", tok, resp.StatusCode, oo, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// metadata needs no token.
	if resp, _ := fhir(t, s, "", "GET", "/metadata", nil); resp.StatusCode != 200 {
		t.Errorf("metadata: %d", resp.StatusCode)
	}
	if got := s.FHIRTokens(); len(got) != 1 || got[0] != "made-up" {
		t.Errorf("FHIRTokens = %q, want only the one carried", got)
	}
}

func TestFHIRRead(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	resp, p := fhir(t, s, tok, "GET", "/Patient/pat-1", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("read: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if p["id"] != "pat-1" || p["gender"] != "female" || p["birthDate"] != "1987-02-20" || p["identifier"] == nil {
		t.Errorf("patient %v", p)
	}
	if resp.Header.Get("ETag") != `W/"1"` || p["meta"].(map[string]any)["versionId"] != "1" {
		t.Errorf("ETag %q meta %v", resp.Header.Get("ETag"), p["meta"])
	}
	for _, path := range []string{"/Practitioner/prac-1", "/Encounter/enc-4", "/Observation/obs-20", "/Condition/cond-4", "/Patient/pat-1/_history/1"} {
		if resp, _ := fhir(t, s, tok, "GET", path, nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/Patient/pat-99", "/Observation/obs-21", "/Patient/pat-1/_history/2"} {
		resp, oo := fhir(t, s, tok, "GET", path, nil)
		if resp.StatusCode != 404 || oo["resourceType"] != "OperationOutcome" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, oo)
		}
	}
	want := []smarttest.PatientSummary{
		{ID: "pat-1", Name: "Amy Shaw", Gender: "female", BirthDate: "1987-02-20"},
		{ID: "pat-2", Name: "Daniel Adams", Gender: "male", BirthDate: "1965-08-11"},
		{ID: "pat-3", Name: "Maria Garcia", Gender: "female", BirthDate: "2001-11-03"},
	}
	got := s.Patients()
	if len(got) != len(want) {
		t.Fatalf("Patients() = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Patients()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestFHIRSearchPaging(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	next := s.FHIRBaseURL() + "/Observation?patient=pat-1&_count=5"
	var ids []string
	pages := 0
	for next != "" {
		if pages == 5 {
			t.Fatal("next links never end")
		}
		resp, b := fhir(t, s, tok, "GET", next, nil)
		if resp.StatusCode != 200 || b["type"] != "searchset" || b["total"] != 12.0 {
			t.Fatalf("page %d: %d %v", pages, resp.StatusCode, b)
		}
		pages++
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			e := e.(map[string]any)
			r := e["resource"].(map[string]any)
			if r["subject"].(map[string]any)["reference"] != "Patient/pat-1" {
				t.Errorf("entry of another patient: %v", r["subject"])
			}
			if e["fullUrl"] != s.FHIRBaseURL()+"/Observation/"+str(r["id"]) {
				t.Errorf("fullUrl %v", e["fullUrl"])
			}
			ids = append(ids, str(r["id"]))
		}
		next = ""
		for _, l := range b["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next = str(l["url"])
				if !strings.HasPrefix(next, s.URL()+"/") {
					t.Fatalf("next link %s leaves the server", next)
				}
			}
		}
	}
	if pages != 3 || len(ids) != 12 || ids[0] != "obs-1" || ids[11] != "obs-12" {
		t.Errorf("%d pages, ids %v", pages, ids)
	}

	_, b := fhir(t, s, tok, "GET", "/Condition?subject=Patient/pat-2", nil)
	if b["total"] != 1.0 {
		t.Errorf("conditions of pat-2: %v", b["total"])
	}
	_, b = fhir(t, s, tok, "GET", "/Encounter?patient=pat-1", nil)
	if b["total"] != 2.0 {
		t.Errorf("encounters of pat-1: %v", b["total"])
	}

	s.SetFaults(smarttest.Faults{NextLinkOrigin: "https://elsewhere.example"})
	_, b = fhir(t, s, tok, "GET", "/Observation?patient=pat-1&_count=5", nil)
	links := b["link"].([]any)
	if len(links) != 2 || !strings.HasPrefix(str(links[1].(map[string]any)["url"]), "https://elsewhere.example/fhir/Observation?") {
		t.Errorf("NextLinkOrigin: links %v", links)
	}
}

func TestFHIRWrites(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	obs := map[string]any{
		"resourceType": "Observation", "status": "final",
		"code":    map[string]any{"text": "Heart rate"},
		"subject": map[string]any{"reference": "Patient/pat-3"},
	}
	resp, created := fhir(t, s, tok, "POST", "/Observation", obs)
	if resp.StatusCode != 201 || created["id"] != "obs-21" {
		t.Fatalf("create: %d %v", resp.StatusCode, created)
	}
	if loc := resp.Header.Get("Location"); loc != s.FHIRBaseURL()+"/Observation/obs-21/_history/1" || resp.Header.Get("ETag") != `W/"1"` {
		t.Errorf("create: Location %q ETag %q", loc, resp.Header.Get("ETag"))
	}
	if resp, _ := fhir(t, s, tok, "POST", "/Observation", map[string]any{"resourceType": "Patient"}); resp.StatusCode != 400 {
		t.Errorf("create with wrong resourceType: %d", resp.StatusCode)
	}

	created["status"] = "amended"
	if resp, _ := fhir(t, s, tok, "PUT", "/Observation/obs-21", created, "If-Match", `W/"7"`); resp.StatusCode != 412 {
		t.Errorf("update with stale If-Match: %d, want 412", resp.StatusCode)
	}
	resp, updated := fhir(t, s, tok, "PUT", "/Observation/obs-21", created, "If-Match", `W/"1"`)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `W/"2"` || updated["status"] != "amended" {
		t.Fatalf("update: %d %s %v", resp.StatusCode, resp.Header.Get("ETag"), updated)
	}

	patch := []map[string]any{
		{"op": "replace", "path": "/status", "value": "corrected"},
		{"op": "add", "path": "/code/coding", "value": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		{"op": "add", "path": "/note", "value": []any{map[string]any{"text": "checked"}}},
		{"op": "remove", "path": "/subject"},
	}
	resp, patched := fhir(t, s, tok, "PATCH", "/Observation/obs-21", patch,
		"Content-Type", "application/json-patch+json", "If-Match", `W/"2"`)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `W/"3"` {
		t.Fatalf("patch: %d %v", resp.StatusCode, patched)
	}
	if patched["status"] != "corrected" || patched["subject"] != nil || patched["note"] == nil ||
		patched["code"].(map[string]any)["text"] != "Heart rate" || patched["code"].(map[string]any)["coding"] == nil {
		t.Errorf("patched %v", patched)
	}
	if resp, _ := fhir(t, s, tok, "PATCH", "/Observation/obs-21", patch, "Content-Type", "application/json-patch+json", "If-Match", `W/"2"`); resp.StatusCode != 412 {
		t.Errorf("patch with stale If-Match: %d", resp.StatusCode)
	}
	if resp, _ := fhir(t, s, tok, "PATCH", "/Observation/obs-21", patch); resp.StatusCode != 415 {
		t.Errorf("patch as fhir+json: %d, want 415", resp.StatusCode)
	}

	if resp, _ := fhir(t, s, tok, "DELETE", "/Observation/obs-21", nil); resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp, _ := fhir(t, s, tok, "GET", "/Observation/obs-21", nil); resp.StatusCode != 410 {
		t.Errorf("read after delete: %d, want 410", resp.StatusCode)
	}
	_, b := fhir(t, s, tok, "GET", "/Observation?patient=pat-3", nil)
	if b["total"] != 3.0 {
		t.Errorf("search after delete: total %v, want 3", b["total"])
	}
}

func TestFHIRBatchAndTransaction(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/gender","value":"other"}]`))
	batch := map[string]any{
		"resourceType": "Bundle", "type": "batch",
		"entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/pat-2"}},
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/nope"}},
			map[string]any{"request": map[string]any{"method": "POST", "url": "Condition"},
				"resource": map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/pat-2"}}},
			map[string]any{"request": map[string]any{"method": "PATCH", "url": s.FHIRBaseURL() + "/Patient/pat-3"},
				"resource": map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch}},
			map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?patient=pat-2&_count=2"}},
		},
	}
	resp, b := fhir(t, s, tok, "POST", "", batch)
	if resp.StatusCode != 200 || b["type"] != "batch-response" {
		t.Fatalf("batch: %d %v", resp.StatusCode, b)
	}
	var statuses []string
	for _, e := range b["entry"].([]any) {
		statuses = append(statuses, str(e.(map[string]any)["response"].(map[string]any)["status"]))
	}
	want := []string{"200 OK", "404 Not Found", "201 Created", "200 OK", "200 OK"}
	if strings.Join(statuses, ",") != strings.Join(want, ",") {
		t.Errorf("statuses %q, want %q", statuses, want)
	}
	created := b["entry"].([]any)[2].(map[string]any)["response"].(map[string]any)
	if !strings.HasPrefix(str(created["location"]), s.FHIRBaseURL()+"/Condition/cond-5/_history/1") {
		t.Errorf("created location %v", created["location"])
	}
	if _, p := fhir(t, s, tok, "GET", "/Patient/pat-3", nil); p["gender"] != "other" {
		t.Errorf("patched in batch: gender %v", p["gender"])
	}

	// A failing transaction changes nothing.
	tx := map[string]any{
		"resourceType": "Bundle", "type": "transaction",
		"entry": []any{
			map[string]any{"request": map[string]any{"method": "DELETE", "url": "Condition/cond-1"}},
			map[string]any{"request": map[string]any{"method": "PUT", "url": "Patient/pat-1", "ifMatch": `W/"9"`},
				"resource": map[string]any{"resourceType": "Patient", "id": "pat-1"}},
		},
	}
	if resp, oo := fhir(t, s, tok, "POST", "", tx); resp.StatusCode != 412 || oo["resourceType"] != "OperationOutcome" {
		t.Errorf("failing transaction: %d %v", resp.StatusCode, oo)
	}
	if resp, _ := fhir(t, s, tok, "GET", "/Condition/cond-1", nil); resp.StatusCode != 200 {
		t.Errorf("transaction not rolled back: cond-1 %d", resp.StatusCode)
	}
	tx["entry"].([]any)[1].(map[string]any)["request"].(map[string]any)["ifMatch"] = `W/"1"`
	resp, b = fhir(t, s, tok, "POST", "", tx)
	if resp.StatusCode != 200 || b["type"] != "transaction-response" || len(b["entry"].([]any)) != 2 {
		t.Fatalf("transaction: %d %v", resp.StatusCode, b)
	}
	if resp, _ := fhir(t, s, tok, "GET", "/Condition/cond-1", nil); resp.StatusCode != 410 {
		t.Errorf("after transaction: cond-1 %d, want 410", resp.StatusCode)
	}
}

func TestFHIRUnauthorizedFault(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{})
	s.SetFaults(smarttest.Faults{Unauthorized: 2})
	var got []int
	for range 3 {
		resp, _ := fhir(t, s, tok, "GET", "/Patient/pat-1", nil)
		got = append(got, resp.StatusCode)
	}
	if got[0] != http.StatusUnauthorized || got[1] != http.StatusUnauthorized || got[2] != http.StatusOK {
		t.Errorf("statuses %v, want 401 401 200", got)
	}
	if len(s.FHIRTokens()) != 3 || s.Count(smarttest.EndpointFHIR) != 3 {
		t.Errorf("FHIRTokens %d, count %d", len(s.FHIRTokens()), s.Count(smarttest.EndpointFHIR))
	}
}

func TestJWTAccessTokens(t *testing.T) {
	t.Parallel()
	s, tok := session(t, smarttest.Options{JWTAccessTokens: true})
	claims, err := verifyIDToken(t, s, tok) // same JWKS
	if err != nil {
		t.Fatalf("access token is not a JWT signed by the server: %v", err)
	}
	if claims["aud"] != s.FHIRBaseURL() || claims["client_id"] != "app" || claims["scope"] != defaultScope {
		t.Errorf("access token claims %v", claims)
	}
	if resp, _ := fhir(t, s, tok, "GET", "/Patient/pat-1", nil); resp.StatusCode != 200 {
		t.Errorf("JWT access token refused: %d", resp.StatusCode)
	}
}
